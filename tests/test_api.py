"""The public API: ``clearsight.explain`` on what users have (spec strings, their own modules, paths, PIL
images, tensors), method classes by name, errors that speak of arguments, and a user's module and the
process left exactly as they were."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import clearsight
from clearsight.errors import InputShapeError, MethodError, OptionError

from .conftest import MODELS, SAMPLES

TENCH = SAMPLES / "n01440764_tench.JPEG"
ROBIN = SAMPLES / "n01558993_robin.JPEG"
RAY = SAMPLES / "n01496331_electric_ray.JPEG"
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def mobilenet_module() -> torch.nn.Module:
    """A user's own MobileNetV2 (real ImageNet weights), in training mode as they left it."""
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    model.load_state_dict(torch.load(MODELS / "mobilenet_v2.pth", map_location="cpu", weights_only=True))
    return model.train()


def test_method_classes_document_their_options():
    """Each class, imported by name from clearsight, documents every option it takes."""
    import inspect

    from clearsight import AttentionRollout, CartoonX, GradCAM, GradCAMPlusPlus, MoXI, PixelRDE, ShapleySampling

    for cls in (GradCAM, GradCAMPlusPlus, AttentionRollout, MoXI, ShapleySampling):
        for option in inspect.signature(cls.__init__).parameters:
            if option != "self":
                assert option in (cls.__doc__ or ""), (cls.__name__, option)
    assert CartoonX.name == "cartoonx" and PixelRDE.name == "pixel-rde"
    with pytest.raises(AttributeError):
        clearsight.NoSuchMethod  # noqa: B018


def test_every_method_of_the_cli_has_its_class_in_clearsight():
    """What ``clearsight explain --method NAME`` runs, ``clearsight.<Class>(...)`` makes (WaveletX and
    ShearletX were reachable only through the registry)."""
    from clearsight.methods import METHODS, explainer_class

    for name in METHODS:
        cls, _ = explainer_class(name)
        assert getattr(clearsight, cls.__name__) is cls, name
        assert cls.__name__ in clearsight.__all__ and cls.__name__ in clearsight.__doc__, name


def test_options_errors_speak_of_arguments_and_render_as_flags():
    from clearsight.methods import build_explainer

    with pytest.raises(OptionError) as err:
        build_explainer("gradcam", {"tau": 0.5})
    assert str(err.value) == "option 'tau' does not apply to method gradcam"
    assert err.value.cli_message() == "--tau does not apply to method gradcam"
    assert err.value.options == ["tau"] and err.value.method == "gradcam"
    with pytest.raises(OptionError) as err:
        build_explainer("gradcam", {"eigen_smoth": True})  # a typo: unknown everywhere, so the choices are listed
    assert "unknown option 'eigen_smoth'" in str(err.value) and "'eigen_smooth'" in str(err.value)
    assert "--eigen-smooth" in err.value.cli_message()
    with pytest.raises(OptionError, match="'interactions' does not apply to method moxi-minus"):
        build_explainer("moxi-minus", {"interactions": True})
    with pytest.raises(MethodError, match="go to the method's constructor"):
        clearsight.explain("efficientnet_lite0", TENCH, clearsight.GradCAM(), eigen_smooth=True)


@pytest.mark.slow
def test_user_module_is_left_as_it_was_and_still_trains(one_thread):
    """Explaining a module in training mode changes nothing on it: training flags, requires_grad, weight
    memory format; a training step afterwards still updates its weights; pytorch-grad-cam's precondition
    (parameters requiring gradients) still holds."""
    model = mobilenet_module()
    model.features[0].eval()  # a mixed state must come back exactly as well
    model.classifier[1].weight.requires_grad_(False)
    flags = [m.training for m in model.modules()]
    grads = [p.requires_grad for p in model.parameters()]
    layouts = [(p.data_ptr(), p.stride()) for p in model.parameters()]
    explanation = clearsight.explain(model, TENCH, "gradcam")
    assert explanation.target_name == "tench" and explanation.model == "MobileNetV2"
    clearsight.explain(model, [TENCH, ROBIN], "gradcampp", eigen_smooth=True)
    assert [m.training for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == grads
    assert [(p.data_ptr(), p.stride()) for p in model.parameters()] == layouts
    with pytest.raises(InputShapeError):  # an error inside the run also restores everything
        clearsight.explain(model, torch.rand(3, 224, 224) * 3)
    assert [m.training for m in model.modules()] == flags
    weight = model.features[1].conv[0][0].weight
    before = weight.detach().clone()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    image = clearsight.load_model("torchvision:mobilenet_v2", weights=MODELS / "mobilenet_v2.pth").prepare(TENCH)
    loss = torch.nn.functional.cross_entropy(model(((image - IMAGENET_MEAN) / IMAGENET_STD)[None]).repeat(2, 1),
                                             torch.tensor([0, 0]))
    loss.backward()
    optimiser.step()
    assert not torch.equal(weight.detach(), before)


@pytest.mark.slow
def test_inputs_paths_pil_tensors_and_normalised_tensors(one_thread):
    """A path, a PIL image and the prepared tensor give one explanation; a normalised tensor is refused with
    a pointer to normalized=True, and explained correctly with it (tench stays tench)."""
    clf = clearsight.load_model("torchvision:mobilenet_v2", weights=MODELS / "mobilenet_v2.pth")
    image = clf.prepare(TENCH)
    from_path = clearsight.explain(clf, TENCH)
    from_pil = clearsight.explain(clf, Image.open(TENCH))
    from_tensor = clearsight.explain(clf, image)
    assert from_path.target_name == "tench"
    np.testing.assert_allclose(from_pil.saliency, from_path.saliency, atol=1e-6)
    np.testing.assert_allclose(from_tensor.saliency, from_path.saliency, atol=1e-6)
    normalised = (image - IMAGENET_MEAN) / IMAGENET_STD
    with pytest.raises(InputShapeError, match="normalized=True"):
        clearsight.explain(clf, normalised)
    fixed = clearsight.explain(clf, normalised, normalized=True)
    assert fixed.target_name == "tench"
    np.testing.assert_allclose(fixed.saliency, from_path.saliency, atol=1e-4)
    batch = clearsight.explain(clf, torch.stack([image, image]), target=["tench", 1])
    assert [e.target for e in batch] == [0, 1]
    both = clearsight.explain(clf, [TENCH, np.asarray(image)], target=0)
    assert len(both) == 2 and all(e.target == 0 for e in both)
    assert both[0].image is not None and both[0].image.shape == (224, 224, 3)


@pytest.mark.slow
def test_target_layer_as_a_module(one_thread):
    model = mobilenet_module()
    by_module = clearsight.explain(model, TENCH, clearsight.GradCAM(target_layer=model.features[14]))
    by_name = clearsight.explain(model, TENCH, "gradcam", target_layer="features.14")
    np.testing.assert_array_equal(by_module.saliency, by_name.saliency)
    assert by_module.settings["target_layer"] == "features.14"
    default = clearsight.explain(model, TENCH)
    assert not np.allclose(default.saliency, by_name.saliency)  # another layer, another map
    with pytest.raises(MethodError, match="not a module of MobileNetV2"):
        clearsight.explain(model, TENCH, target_layer=torch.nn.Conv2d(3, 3, 1))


FRESH_PROCESS = r"""
import sys, matplotlib
matplotlib.use("svg")
import torch, clearsight
from torch import nn
print(not any(m.startswith("clearsight.methods.") and m != "clearsight.methods.base" for m in sys.modules))
import clearsight.viz
print(matplotlib.get_backend() == "svg")
threads = torch.get_num_threads()
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
torch.manual_seed(5)
state = torch.get_rng_state()
e = clearsight.explain(model, torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), "gradcam")[0]
import clearsight.models.cpu_memory as cm
print(torch.get_num_threads() == threads, torch.equal(torch.get_rng_state(), state), torch.is_grad_enabled(),
      cm._applied is None, torch.get_default_dtype() == torch.float32)
import matplotlib.pyplot as plt
png = e._repr_png_()
print(png[:8] == b"\x89PNG\r\n\x1a\n", matplotlib.get_backend() == "svg", plt.get_fignums() == [])
ax = e.plot()
print(ax.get_title().startswith("gradcam: class "), len(ax.images) == 2)
"""


@pytest.mark.slow  # a fresh interpreter imports torch: 10-40 s
def test_a_fresh_process_keeps_its_settings():
    """In a new process: ``import clearsight`` loads no method module; importing ``clearsight.viz``, explaining
    a module and showing the result (notebook PNG) change no process-wide setting: thread count, RNG,
    grad mode, glibc allocator, default dtype, matplotlib's backend, pyplot's open figures."""
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"] * 12, out.stdout + out.stderr


def test_explanation_repr():
    e = clearsight.Explanation(method="gradcam", target=0, target_name="tench", model="m", score=0.91234,
                               saliency=np.zeros((224, 224), np.float32), cost={"seconds": 0.25, "passes": 1.0})
    assert repr(e) == ("Explanation(method='gradcam', model='m', target=0 ('tench'), score=0.9123, "
                       "saliency=(224, 224), cost=(0.25 s, 1 passes))")


def test_explanation_keeps_its_image_on_disk(tmp_path):
    e = clearsight.Explanation(method="m", target=1, saliency=np.ones((4, 4), np.float32),
                               image=np.full((4, 4, 3), 7, np.uint8))
    back = clearsight.Explanation.load(e.save(tmp_path / "x"))
    np.testing.assert_array_equal(back.image, e.image)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deit", "mobilenet"])
def test_batched_cams_and_rollout_equal_one_image_at_a_time(model, request, one_thread):
    """Grad-CAM, Grad-CAM++ (eigen-smoothed too) and rollout share model passes across a batch (chunks of 2
    here, so a chunk boundary is crossed); every map equals the image's own explanation to 1e-5, for a ViT
    and a CNN on 3 real photos, with per-image targets.

    Except Grad-CAM++ on DeiT-Tiny, to 5e-5 (measured: 3.1e-5; 1.7e-5 eigen-smoothed): its weights divide by
    2g^2 + sum(A) g^3, which nears zero for LayerNorm features (negative activations), so it amplifies fp32
    rounding ~10x more than Grad-CAM (one image on 1 vs 2 threads: 2.7e-6 vs 3e-7); batched GEMMs round
    differently from single-image ones (Grad-CAM: 6e-7). Computing the weights in float64 does not help:
    the rounding is in the model's activations and gradients.
    """
    clf = request.getfixturevalue(model)
    images = torch.stack([clf.prepare(p) for p in (TENCH, ROBIN, RAY)])
    targets = [None, "robin", 5]
    methods = [clearsight.GradCAM(batch_size=2), clearsight.GradCAMPlusPlus(batch_size=2, eigen_smooth=True)]
    if clf.is_token_model:
        methods.append(clearsight.AttentionRollout())
    for method in methods:
        passes = clf.passes
        batched = method.explain(clf, images, targets)
        assert clf.passes - passes == 3  # one pass per image, shared in chunks
        for image, target, together in zip(images, targets, batched):
            alone = method.explain(clf, image, target)
            assert together.target == alone.target and together.target_name == alone.target_name
            assert together.score == pytest.approx(alone.score, abs=1e-5)
            tolerance = 5e-5 if clf.is_token_model and method.name == "gradcampp" else 1e-5
            np.testing.assert_allclose(together.saliency, alone.saliency, atol=tolerance, err_msg=method.name)
        assert [e.target for e in batched][1:] == [15, 5]
