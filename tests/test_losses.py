import torch
import torch.nn.functional as F

from gankit.losses import LOSSES, get_loss


def test_nonsaturating_matches_binary_cross_entropy():
    torch.manual_seed(0)
    real, fake = torch.randn(32), torch.randn(32)
    loss = get_loss("nonsaturating")
    expected_d = F.binary_cross_entropy_with_logits(real, torch.ones(32)) + \
        F.binary_cross_entropy_with_logits(fake, torch.zeros(32))
    expected_g = F.binary_cross_entropy_with_logits(fake, torch.ones(32))
    torch.testing.assert_close(loss.d_loss(real, fake), expected_d)
    torch.testing.assert_close(loss.g_loss(fake), expected_g)


def test_every_loss_rewards_d_for_separating_and_g_for_fooling():
    confident_real, confident_fake = torch.full((8,), 5.0), torch.full((8,), -5.0)
    for name in LOSSES:
        loss = get_loss(name)
        assert loss.d_loss(confident_real, confident_fake) < loss.d_loss(confident_fake, confident_real), name
        assert loss.g_loss(confident_real) < loss.g_loss(confident_fake), name


def test_losses_average_over_patch_logits():
    loss = get_loss("nonsaturating")
    patches = torch.randn(4, 1, 3, 3)
    torch.testing.assert_close(loss.g_loss(patches), loss.g_loss(patches.flatten()))
