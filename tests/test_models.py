"""Contract tests every registered recipe inherits: add a recipe and it is tested here."""

import dataclasses
import io

import pytest
import torch

from gankit.config import from_dict
from gankit.errors import GankitError
from gankit.losses import get_loss
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nn import ShiftOnlyBatchNorm
from gankit.contracts import (Discriminator, DomainDiscriminators, FreezableDiscriminator, ImageGenerator,
                              ImageTranslator, StyleGenerator, implements)
from gankit.variants import RECIPES, DataSpec, get_recipe

SPECS = [DataSpec(size=16, channels=1), DataSpec(size=32, channels=3), DataSpec(size=16, channels=1, num_classes=3)]
SPEC_IDS = ["16px1c", "32px3c", "16px1c-3classes"]
# Model options beyond the tiny presets: every architectural switch must keep the contract.
VARIANTS = {
    "convgan": [{"minibatch": "stddev"}, {"minibatch": "discrimination"}, {"d_head": "conv"},
                {"g_start": "convT", "g_norm": "layer", "d_norm": "batch", "output": "sigmoid"},
                {"d_norm": "layer", "d_dropout": 0.0, "g_activation": "selu", "g_project_activation": False}],
    "mlp": [{"minibatch": "discrimination"}, {"output": "tanh", "activation": "leaky_relu"}],
}
CONDITIONAL_VARIANTS = [{"g_label_input": "embedding", "d_label_input": "projection"},
                        {"g_label_input": "onehot", "d_label_input": "channels"}]


def build(name, spec, **options):
    recipe = get_recipe(name)
    torch.manual_seed(0)
    try:
        return recipe.build(from_dict(recipe.model_config, {**recipe.tiny, **options}), spec)
    except GankitError as err:
        if spec.num_classes and "takes no labels" in str(err):
            pytest.skip(f"{name} is unconditional")
        raise


def labels_for(spec, n):
    return torch.arange(n) % spec.num_classes if spec.num_classes else None


def cases():
    for name in RECIPES.names():
        if get_recipe(name).task != "generation":  # noise -> image; translators: below
            continue
        yield pytest.param(name, {}, id=name)
        for i, options in enumerate(VARIANTS.get(name, [])):
            yield pytest.param(name, options, id=f"{name}-variant{i}")


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("name, options", list(cases()))
def test_shapes_and_output_range(name, options, spec):
    G, D = build(name, spec, **options)
    assert implements(G, ImageGenerator) and implements(D, Discriminator)
    z, labels = torch.randn(6, G.latent_dim), labels_for(spec, 6)
    images = G(z, labels)
    assert images.shape == (6, spec.channels, spec.size, spec.size)
    low, high = G.output_range
    linear = getattr(get_recipe(name).options(dict(options)), "output", None) == "linear"
    if linear:  # StyleGAN's and ProGAN's output, as their references: may overshoot, clipped for pictures
        assert torch.isfinite(images).all()
    else:
        assert images.min() >= low and images.max() <= high
    assert D(images, labels).shape == (6,)


def _bce_d_loss(real_logits, fake_logits):
    # The architecture contract: a loss that depends on every D weight (the Wasserstein loss
    # cancels D's output bias, which is right for that loss but would hide a dead layer here).
    return get_loss("nonsaturating").d_loss(real_logits, fake_logits)


@pytest.mark.parametrize("spec", [SPECS[0], SPECS[2]], ids=[SPEC_IDS[0], SPEC_IDS[2]])
@pytest.mark.parametrize("name, options", list(cases()))
def test_gradients_reach_every_weight_and_a_step_changes_them(name, options, spec):
    # deterministic (str hash() is salted per process): alternate the two label inputs over cases
    conditional = CONDITIONAL_VARIANTS[sum(map(ord, name + str(options))) % 2] if spec.num_classes else {}
    fields = {f.name for f in dataclasses.fields(get_recipe(name).model_config)}
    conditional = {k: v for k, v in conditional.items() if k in fields}
    G, D = build(name, spec, **options, **conditional)
    loss = get_loss(get_recipe(name).defaults.get("loss", "nonsaturating"))
    low, high = G.output_range
    labels = labels_for(spec, 6)
    real = torch.rand(6, 1, 16, 16) * (high - low) + low
    losses = {
        "D": lambda: _bce_d_loss(D(real, labels), D(G(torch.randn(6, G.latent_dim), labels).detach(), labels)),
        "G": lambda: loss.g_loss(D(G(torch.randn(6, G.latent_dim), labels), labels)),
    }
    for net_name, net in (("D", D), ("G", G)):
        # a growing net's image layers of resolutions it has grown past are unused by design
        unused = getattr(net, "unused_parameters", set)()
        named = [(n, p) for n, p in net.named_parameters() if p.requires_grad and n not in unused]
        params = [p for _, p in named]
        grads = torch.autograd.grad(losses[net_name](), params)
        for (pname, _), grad in zip(named, grads):
            assert grad.abs().sum() > 0, f"no gradient reaches {net_name}.{pname}"
        before = [p.detach().clone() for p in params]
        opt = torch.optim.Adam(params, lr=1e-3)
        losses[net_name]().backward(inputs=params)
        opt.step()
        unchanged = [n for (n, _), b, p in zip(named, before, params) if torch.equal(b, p)]
        assert not unchanged, f"one step left {net_name} weights unchanged: {unchanged}"


@pytest.mark.parametrize("name, options", list(cases()))
def test_state_dict_round_trip_gives_identical_outputs(name, options):
    spec = SPECS[0]
    G, D = build(name, spec, **options)
    G.eval(), D.eval()
    buffer = io.BytesIO()
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch.manual_seed(1)  # different init: the load must overwrite everything
    recipe = get_recipe(name)
    G2, D2 = recipe.build(from_dict(recipe.model_config, {**recipe.tiny, **options}), spec)
    G2.load_state_dict(state["G"]), D2.load_state_dict(state["D"])
    G2.eval(), D2.eval()
    z = torch.randn(3, G.latent_dim)
    assert torch.equal(G(z), G2(z)) and torch.equal(D(G(z)), D2(G(z)))


def test_dcgan_follows_the_keras_example():
    G = DCGANGenerator(size=64, channels=3, latent_dim=64, width=128)
    D = DCGANDiscriminator(size=64, channels=3, width=128, dropout=0.4)
    linear = G.project[0]
    assert linear.in_features == 64 and linear.out_features == 4 * 4 * 128 and linear.bias is None
    convs_g = [m for m in G.upsample if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs_g) == 4  # depth = log2(64) - 2 = 4: three inner blocks + the output layer
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs_g)
    assert all(c.bias is None for c in convs_g[:-1]) and convs_g[-1].bias is not None
    assert isinstance(G.upsample[-1], torch.nn.Sigmoid)
    norms = [m for m in G.modules() if isinstance(m, ShiftOnlyBatchNorm)]
    # no learnable scale (Keras scale=False): only the shift is a parameter; the scale is a fixed 1
    assert len(norms) == 4 and all([name for name, _ in n.named_parameters()] == ["bias"] for n in norms)
    assert all(torch.equal(n.weight, torch.ones_like(n.bias)) and "weight" not in n.state_dict() for n in norms)
    convs_d = [m for m in D.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs_d) == 4 and all(c.bias is None for c in convs_d)
    assert D.head[1].p == 0.4 and D.head[2].in_features == 128 * 4 * 4
    leaky = [m for m in D.features if isinstance(m, torch.nn.LeakyReLU)]
    assert len(leaky) == 4 and all(m.negative_slope == 0.2 for m in leaky)


@pytest.mark.parametrize("size", [7, 48, 4, 2048])
def test_sizes_the_dcgan_cannot_make_are_user_errors(size):
    with pytest.raises(GankitError, match="power of two"):
        DCGANGenerator(size=size, channels=3)


# ---------------------------------------------------------------- translators (tasks unpaired, paired)

TRANSLATORS = [name for name in RECIPES.names() if get_recipe(name).task in ("unpaired", "paired")]
TRANSLATOR_VARIANTS = {"cyclegan": {"norm": "none", "dropout": 0.5, "g_blocks": 0},
                       "pix2pix": {"norm": "batch", "dropout": 0.0}}


def translator_losses(G, D, a, b, loss):
    """(G's loss, D's loss) over every direction G has and the discriminator(s) D has: one per
    domain (DomainDiscriminators), or one that judges an output beside its input."""
    if implements(D, DomainDiscriminators):
        to = {"a2b": ("b", a), "b2a": ("a", b)}  # direction -> (the domain it makes, its input)
        judge = {"a2b": lambda x, source: D(x, "b"), "b2a": lambda x, source: D(x, "a")}
        reals = {"a2b": b, "b2a": a}
    else:
        to = {"a2b": (None, a)}
        judge = {"a2b": lambda x, source: D(x, source)}
        reals = {"a2b": b}
    g = lambda: sum(loss.g_loss(judge[d](G(x, d), x)) for d, (_, x) in to.items() if d in G.directions)
    d = lambda: sum(loss.d_loss(judge[k](reals[k], x), judge[k](G(x, k).detach(), x))
                    for k, (_, x) in to.items() if k in G.directions)
    return g, d


@pytest.mark.parametrize("variant", [False, True], ids=["defaults", "variant"])
@pytest.mark.parametrize("name", TRANSLATORS)
def test_translator_contract(name, variant):
    """The Protocols, shapes and range, gradients to every weight, one step changes them, and a
    state round trip."""
    options = TRANSLATOR_VARIANTS.get(name, {}) if variant else {}
    spec = DataSpec(size=16, channels=3)
    G, D = build(name, spec, **options)
    assert implements(G, ImageTranslator) and G.channels == 3
    assert implements(D, DomainDiscriminators) or implements(D, Discriminator)
    a, b = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    for direction in G.directions:
        y = G(a, direction)
        assert y.shape == a.shape and y.min() >= G.output_range[0] and y.max() <= G.output_range[1]
    loss = get_loss(get_recipe(name).defaults["loss"])
    g_loss, d_loss = translator_losses(G, D, a, b, loss)
    for net_name, net, fn in (("G", G, g_loss), ("D", D, d_loss)):
        named = list(net.named_parameters())
        grads = torch.autograd.grad(fn(), [p for _, p in named])
        assert all(g.abs().sum() > 0 for g in grads), [n for (n, _), g in zip(named, grads) if not g.abs().sum()]
        before = [p.detach().clone() for _, p in named]
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        fn().backward(inputs=list(net.parameters()))
        opt.step()
        assert all(not torch.equal(x, p) for x, (_, p) in zip(before, named))
    buffer = io.BytesIO()
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    G2, D2 = build(name, spec, **options)
    G2.load_state_dict(state["G"]), D2.load_state_dict(state["D"])
    for net in (G, G2, D, D2):
        net.eval()
    assert torch.equal(G(a, "a2b"), G2(a, "a2b"))
    judge = (lambda net: net(a, "a")) if implements(D, DomainDiscriminators) else (lambda net: net(b, a))
    assert torch.equal(judge(D), judge(D2))


@pytest.mark.parametrize("name", RECIPES.names())
def test_d_blocks_for_freeze_d_are_disjoint_in_order_and_leave_the_head(name):
    """Every D made of blocks lists each of its weights at most once, the blocks in the order
    the image meets them (each block's output feeds the next), and keeps a head out of them."""
    spec = DataSpec(size=16, channels=3)
    G, D = build(name, spec)
    if not implements(D, FreezableDiscriminator):
        pytest.skip(f"{name}'s D is not made of blocks (FreezeD refuses it)")
    blocks = D.blocks_from_image()
    ids = [id(p) for block in blocks for p in block.parameters()]
    assert blocks and len(ids) == len(set(ids)) and all(list(b.parameters()) for b in blocks)
    assert {id(p) for p in D.parameters()} - set(ids), "the head must stay out of the blocks"
    # a change of the first block's weights moves D's output; the first block sees the image
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    condition = image if get_recipe(name).task == "paired" else None
    before = D(image, condition).detach().clone()
    with torch.no_grad():
        for p in blocks[0].parameters():
            p.add_(0.5)
    assert not torch.equal(before, D(image, condition))


# ------------------------------------------------------------------ contracts on any Python


def test_contracts_see_submodules_parameters_and_buffers():
    """On Python >= 3.12, isinstance(G, StyleGenerator) is False for a real StyleGAN G (Protocol
    checks there do not see what nn.Module keeps in _modules and _buffers); implements() is the
    check gankit uses, so the contracts hold on every Python."""
    G, _ = build("stylegan", SPECS[0])
    assert implements(G, StyleGenerator)

    class Partial(torch.nn.Module):  # a mapping and sizes, but no w_avg buffer
        def __init__(self):
            super().__init__()
            self.mapping = torch.nn.Linear(2, 2)
            self.latent_dim, self.num_classes, self.output_range, self.num_ws, self.w_dim = 2, 0, (-1, 1), 1, 2

        def synthesis(self, ws):
            return ws

    partial = Partial()
    assert not implements(partial, StyleGenerator)
    partial.register_buffer("w_avg", torch.zeros(2))
    assert implements(partial, StyleGenerator)


def test_gankit_never_asks_isinstance_of_a_contract():
    """CI runs Python 3.11, where isinstance against these Protocols happens to work on modules:
    this keeps a 3.12-only failure from coming back unseen."""
    import ast
    import pathlib

    import gankit
    from gankit import contracts

    names = {name for name, value in vars(contracts).items()
             if getattr(value, "_is_protocol", False) and value is not contracts.Protocol}

    def named(node):  # Name, contracts.Name, or a tuple holding either
        if isinstance(node, ast.Tuple):
            return any(named(element) for element in node.elts)
        return getattr(node, "id", None) in names or getattr(node, "attr", None) in names

    offenders = []
    for path in pathlib.Path(gankit.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance"
                    and len(node.args) == 2 and named(node.args[1])):
                offenders.append(f"{path.name}:{node.lineno}")
    assert names >= {"StyleGenerator", "Discriminator"} and offenders == []


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_sync_batchnorm_conversion_keeps_parameters_keys_and_the_fixed_scale(name):
    """`--set sync_batchnorm=true` converts every batch norm; the DCGAN's shift-only ones keep
    their fixed scale and their state-dict keys, so checkpoints load either way. (Training with
    it needs several GPUs: the conversion is what a CPU can check.)"""
    from gankit.nn import ShiftOnlySyncBatchNorm, convert_sync_batchnorm

    spec = SPECS[2] if name == "cgan" else SPECS[0]
    with_norms = [net for net in build(name, spec) if any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())]
    assert with_norms  # the DCGAN's G and D, cgan's G (conditional batch norm)
    for net in with_norms:
        keys, params = list(net.state_dict()), dict(net.named_parameters())
        norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        shift_only = sum(isinstance(m, ShiftOnlyBatchNorm) for m in norms)
        converted = convert_sync_batchnorm(net)
        synced = [m for m in converted.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        assert len(synced) == len(norms) and all(isinstance(m, torch.nn.SyncBatchNorm) for m in synced)
        assert sum(isinstance(m, ShiftOnlySyncBatchNorm) for m in synced) == shift_only
        assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.weight.requires_grad
                   for m in synced if isinstance(m, ShiftOnlySyncBatchNorm))
        assert list(converted.state_dict()) == keys
        assert {k: id(v) for k, v in converted.named_parameters()} == {k: id(v) for k, v in params.items()}
