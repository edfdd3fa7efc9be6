import pytest
import yaml

from gankit.config import TrainConfig, from_dict, load_yaml, to_dict
from gankit.resolve import resolve_config
from gankit.errors import GankitError


def test_defaults_resolve_to_the_keras_dcgan():
    config = resolve_config()
    assert config.recipe == "dcgan" and config.data.source == "mnist5k"
    assert config.model == {"latent_dim": 64, "width": 128, "dropout": 0.4}
    assert (config.optim.lr_g, config.optim.lr_d, config.optim.beta1, config.optim.beta2) == (2e-4, 2e-4, 0.5, 0.999)
    assert config.ema_decay == 0.99 and config.loss == "nonsaturating"


def test_resolved_config_round_trips_through_a_dict():
    config = resolve_config({"data": {"size": 64}, "model": {"width": 32}, "steps": 10})
    again = from_dict(TrainConfig, to_dict(config))
    assert again == config


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"batchh": 3}, "unknown option config.batchh"),
        ({"data": {"sise": 3}}, "unknown option config.data.sise"),
        ({"model": {"widht": 3}}, "unknown option model.widht"),
        ({"batch": "many"}, "should be of type int"),
        ({"batch": 0}, "batch=0 must be at least 1"),
        ({"data": {"crop": "middle"}}, "use one of center, random, none"),
        ({"data": {"channels": 2}}, "use 1 or 3"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"steps": -5}, "must be positive"),
        ({"recipe": "nope"}, "unknown recipe 'nope'"),
        ({"loss": "nope"}, "unknown loss 'nope': choose one of hinge"),
        ({"update": "sideways"}, "unknown update 'sideways'"),
        ({"penalty": "l2"}, "unknown penalty 'l2'"),
        ({"loss": "wasserstein", "targets": {"smoothing": 0.1}}, "no targets to smooth"),
        ({"targets": {"flip": 0.7}}, "targets.flip must be in"),
        ({"replay": {"size": 10, "fraction": 0}}, "replay.fraction"),
        ({"optim": {"name": "sgd"}}, "use one of adam, rmsprop"),
        ({"recipe": "convgan", "model": {"g_strides": [2, 2]}}, "give one stride per width"),
        ({"recipe": "convgan", "model": {"minibatch": "discrimination", "d_head": "conv"}},
         "use model.d_head=dense"),
        ({"recipe": "mlp", "model": {"activation": "swish"}}, "model.activation='swish' is not valid"),
    ],
)
def test_bad_options_name_the_problem(overrides, message):
    with pytest.raises(GankitError, match=message):
        resolve_config(overrides)


def test_ints_are_accepted_for_floats():
    assert resolve_config({"optim": {"lr_g": 1}}).optim.lr_g == 1.0


def test_yaml_presets_load_and_reject_garbage(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"batch": 16, "data": {"size": 16}}))
    assert load_yaml(good) == {"batch": 16, "data": {"size": 16}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch: [1, 2\n")
    with pytest.raises(GankitError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(GankitError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
