"""Backbones and heads: torchreid weights load strictly, shapes, BNNeck behaviour, registries."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from training.errors import CheckpointError
from training.modeling import MODELS, GeM, build_model, load_pretrained, load_weights, read_state_dict


@pytest.mark.parametrize("dataset,classes", [("msmt17", 1041), ("market1501", 751)])
def test_torchreid_osnet_x0_25_weights_load_strictly(osnet_weights, dataset, classes):
    sd = torch.load(osnet_weights[dataset], map_location="cpu", weights_only=True)
    assert sd["classifier.weight"].shape[0] == classes
    model = build_model("osnet_x0_25", num_classes=classes)
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.conv2[0].gate.fc1.weight, sd["conv2.0.gate.fc1.weight"])
    assert torch.equal(model.fc[1].running_var, sd["fc.1.running_var"])


def test_inference_model_drops_the_classifier_and_gives_512_d(osnet_weights, market_root):
    import cv2

    from training.export import preprocess

    model = build_model("osnet_x0_25")  # num_classes=0: no classifier
    load_weights(model, osnet_weights["msmt17"])
    assert model.classifier is None
    crops = [cv2.imread(str(p)) for p in sorted((market_root / "query").glob("*.jpg"))]
    x = torch.from_numpy(preprocess(crops, (256, 128), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    with torch.no_grad():
        feats = model.eval()(x)
    assert feats.shape == (2, 512)
    assert (feats >= 0).all()  # torchreid's feature is taken after fc's ReLU


def test_torchreid_checkpoint_dicts_and_module_prefixes_are_accepted(osnet_weights, tmp_path):
    sd = torch.load(osnet_weights["market1501"], map_location="cpu", weights_only=True)
    wrapped = {"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 150}
    torch.save(wrapped, tmp_path / "ckpt.pth.tar")
    back = read_state_dict(tmp_path / "ckpt.pth.tar")
    assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_weights_of_another_architecture_fail_naming_the_file(osnet_weights):
    with pytest.raises(CheckpointError, match=r"osnet_x0_25_msmt17\.pth: does not fit OSNet: shape mismatch"):
        load_weights(build_model("osnet_x0_5"), osnet_weights["msmt17"])
    with pytest.raises(CheckpointError, match="weights file not found"):
        read_state_dict("/nonexistent/w.pth")


def test_pretrained_init_copies_matching_tensors_but_not_the_classifier(osnet_weights):
    model = build_model("osnet_x0_25", num_classes=16)
    before = model.classifier.weight.clone()
    loaded, skipped = load_pretrained(model, osnet_weights["market1501"])
    assert "conv1.conv.weight" in loaded and "classifier.weight" in skipped
    assert torch.equal(model.classifier.weight, before)
    with pytest.raises(CheckpointError, match="no tensor in it matches ResNet"):
        load_pretrained(build_model("resnet50"), osnet_weights["market1501"])


def test_resnet50_last_stride_one_doubles_the_final_map_and_ibn_a_has_instance_norm():
    x = torch.randn(2, 3, 128, 64)
    r1 = build_model("resnet50", num_classes=5).eval()
    r2 = build_model("resnet50", num_classes=5, last_stride=2).eval()
    with torch.no_grad():
        assert r1.featuremaps(x).shape == (2, 2048, 8, 4)
        assert r2.featuremaps(x).shape == (2, 2048, 4, 2)
    ibn = build_model("resnet50_ibn_a", num_classes=5)
    keys = ibn.state_dict().keys()
    assert "layer1.0.bn1.IN.weight" in keys and "layer3.5.bn1.BN.running_mean" in keys
    assert "layer4.0.bn1.weight" in keys  # no IBN in the last stage


def test_bnneck_feeds_triplet_before_bn_and_inference_after_bn():
    torch.manual_seed(0)
    model = build_model("osnet_x0_25", num_classes=7, fc_dim=None, bnneck=True, pooling="gem")
    x = torch.randn(4, 3, 64, 32)
    model.train()
    out = model(x)
    assert out.logits.shape == (4, 7) and out.features.shape == (4, 128)
    assert model.classifier.bias is None and not model.bottleneck.bias.requires_grad
    model.eval()
    with torch.no_grad():
        emb = model(x)
        pooled = model.pool(model.featuremaps(x)).flatten(1)
    assert torch.allclose(emb, model.bottleneck(pooled))
    assert not torch.allclose(emb, pooled)


def test_gem_pooling_limits():
    x = torch.rand(2, 3, 4, 5) + 0.1
    gem = GeM(p=1.0)
    assert torch.allclose(gem(x).flatten(1), x.mean(dim=(2, 3)), atol=1e-6)
    gem.p.data.fill_(50.0)
    assert torch.allclose(gem(x).flatten(1), x.amax(dim=(2, 3)), rtol=0.1)


def test_registry_lists_valid_models():
    names = {"resnet50", "resnet50_ibn_a", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25"}
    assert names <= set(MODELS)
    with pytest.raises(KeyError, match="unknown model 'osnet'; valid models: osnet_ibn_x1_0, osnet_x0_25"):
        build_model("osnet")


@pytest.mark.parametrize("arch,params", [("osnet_x1_0", 2.17), ("osnet_x0_25", 0.20)])
def test_osnet_sizes_match_the_paper(arch, params):
    """OSNet paper / torchreid: x1.0 has 2.2 M and x0.25 0.2 M parameters without the classifier."""
    n = sum(p.numel() for p in build_model(arch).parameters()) / 1e6
    assert abs(n - params) < 0.02
