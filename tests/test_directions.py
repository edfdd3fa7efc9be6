"""Editing directions (SeFa, GANSpace) in w, and edits along them."""

import numpy as np
import pytest
import torch
from torch import nn

from gankit import train
from gankit.directions import Directions, direction_strips, edit_ws, find_directions, layer_indices
from gankit.errors import GankitError

from helpers import one_line_error, run_cli, tiny_options


class Stretched(nn.Module):
    """w = z * stretch (so w's principal axes are the coordinate axes, largest first), and style
    affines given by the test; synthesis: a fixed linear map of the mean style."""

    output_range = (-1.0, 1.0)

    def __init__(self, affines, stretch=(4.0, 2.0, 1.0, 0.5), num_ws=4):
        super().__init__()
        self.latent_dim = self.w_dim = len(stretch)
        self.num_ws, self.num_classes = num_ws, 0
        self.register_buffer("stretch", torch.tensor(stretch))
        self.register_buffer("w_avg", torch.zeros(len(stretch)))
        self.register_buffer("A", torch.randn(len(stretch), 16, generator=torch.Generator().manual_seed(0)) * 0.1)
        self.affines = affines

    def mapping(self, z, labels=None):
        return z * self.stretch

    def synthesis(self, ws):
        return (ws.mean(1) @ self.A).view(-1, 1, 4, 4)

    def forward(self, z, labels=None):
        return self.synthesis(self.mapping(z).unsqueeze(1).repeat(1, self.num_ws, 1))

    def style_weights(self):
        return self.affines


def test_sefa_is_the_eigen_decomposition_of_the_normalised_affines():
    g = torch.Generator().manual_seed(1)
    affines = [(0, torch.randn(6, 4, generator=g)), (1, torch.randn(5, 4, generator=g)), (3, torch.randn(3, 4, generator=g))]
    G = Stretched(affines)
    found = find_directions(G, "sefa", k=3, layers="0-1", n=500)
    A = torch.cat([affines[0][1], affines[1][1]]).double().numpy()  # layers 0 and 1 only
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(A.T @ A)
    order = np.argsort(values)[::-1][:3]
    np.testing.assert_allclose(found.values.numpy(), values[order], rtol=1e-5)
    for mine, theirs in zip(found.vectors.double().numpy(), vectors[:, order].T):
        assert abs(abs(mine @ theirs) - 1) < 1e-5  # the same axis (an eigenvector's sign is free)
    assert found.layers == [0, 1] and torch.all(found.values[:-1] >= found.values[1:])


def test_ganspace_finds_the_axes_along_which_w_varies_most_with_their_spread():
    G = Stretched([])
    found = find_directions(G, "ganspace", k=2, n=20_000)
    assert abs(found.vectors[0, 0]) > 0.999 and abs(found.vectors[1, 1]) > 0.999
    torch.testing.assert_close(found.sigmas, torch.tensor([4.0, 2.0]), rtol=0.03, atol=0)
    torch.testing.assert_close(found.values, torch.tensor([16.0, 4.0]), rtol=0.06, atol=0)


def test_an_edit_moves_only_the_chosen_layers_by_amount_standard_deviations(tmp_path):
    found = Directions("ganspace", torch.eye(4)[:2], torch.tensor([16.0, 4.0]), torch.tensor([4.0, 2.0]), [1, 2])
    ws = torch.randn(3, 4, 4)
    edited = edit_ws(ws, found, index=1, amount=1.5)
    assert torch.equal(edited[:, [0, 3]], ws[:, [0, 3]])
    torch.testing.assert_close(edited[:, [1, 2]] - ws[:, [1, 2]], torch.tensor([0.0, 3.0, 0.0, 0.0]).expand(3, 2, 4))
    again = Directions.load(found.save(tmp_path / "d.npz"))
    assert again.method == "ganspace" and again.layers == [1, 2] and torch.equal(again.vectors, found.vectors)
    with pytest.raises(GankitError, match="--direction 2: the file has directions 0 to 1"):
        edit_ws(ws, found, index=2, amount=1.0)


def test_layer_groups_and_bad_layers():
    assert layer_indices("all", 6) == list(range(6)) and layer_indices("coarse", 6) == [0, 1]
    assert layer_indices("fine", 6) == [4, 5] and layer_indices("1-3", 6) == [1, 2, 3]
    assert layer_indices("0,4", 6) == [0, 4]
    for bad in ("6", "2-9", "sideways", ""):
        with pytest.raises(GankitError, match="--layers"):
            layer_indices(bad, 6)


def test_directions_and_edit_on_a_trained_stylegan(tmp_path, capsys):
    run = train(tiny_options(tmp_path / "runs", "stylegan"), steps=1, name="s").run_dir
    code, out, err = run_cli(["directions", run, "--k", "3", "--n", "200", "--out", tmp_path / "d.png",
                              "--save", tmp_path / "d.npz"], capsys)
    assert code == 0, err
    assert (tmp_path / "d.png").is_file() and "direction 2:" in out
    from gankit import load_generator

    G = load_generator(run).module
    found = Directions.load(tmp_path / "d.npz")
    strips = direction_strips(G, found, amounts=(-2.0, 0.0, 2.0), seed=0)
    assert strips.shape == (9, 1, 16, 16)
    assert torch.equal(strips[1], strips[4]) and not torch.equal(strips[0], strips[2])  # 0: the original
    code, out, err = run_cli(["edit", run, "--directions", tmp_path / "d.npz", "--direction", "1", "--amount",
                              "3", "--n", "2", "--out", tmp_path / "e.png", "--save-latent", tmp_path / "e.npz"], capsys)
    assert code == 0, err
    with np.load(tmp_path / "e.npz") as f:
        assert f["ws"].shape == (2, G.num_ws, G.w_dim)
    code, _, err = run_cli(["edit", run, "--directions", tmp_path / "d.npz", "--direction", "7",
                            "--out", tmp_path / "x.png"], capsys)
    assert "--direction 7: the file has directions 0 to 2" in one_line_error(code, err)
    dcgan = train(tiny_options(tmp_path / "runs"), steps=1, name="plain").run_dir
    code, _, err = run_cli(["directions", dcgan, "--out", tmp_path / "y.png"], capsys)
    assert "need a StyleGAN-style generator" in one_line_error(code, err)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
