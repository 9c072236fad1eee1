"""hetero.onnx.load on small models built here with onnx.helper: values against onnx's reference evaluator,
parameters and state_dict names, eager vs compiled, a training step, shape arithmetic, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, defs, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import hetero  # noqa: E402
import hetero.onnx as honnx  # noqa: E402
from hetero.nn import functional as F  # noqa: E402
from tests.helpers import assert_close  # noqa: E402


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "test", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _cnn(rng, opset=17, batch=2):
    """conv (asymmetric pads) -> batch norm -> relu -> max pool (ceil) -> avg pool -> flatten -> gemm -> softmax."""
    inits = [
        ("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.5),
        ("conv.bias", rng.standard_normal(4).astype(np.float32)),
        ("bn.weight", rng.uniform(0.5, 1.5, 4).astype(np.float32)),
        ("bn.bias", rng.standard_normal(4).astype(np.float32)),
        ("bn.running_mean", rng.standard_normal(4).astype(np.float32) * 0.1),
        ("bn.running_var", rng.uniform(0.5, 2.0, 4).astype(np.float32)),
        ("fc.weight", rng.standard_normal((5, 80)).astype(np.float32) * 0.3),
        ("fc.bias", rng.standard_normal(5).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 0, 2, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                         ["b"], epsilon=1e-3, name="bn"),
        helper.make_node("Relu", ["b"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, name="pool"),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], name="avg"),
        helper.make_node("Flatten", ["a"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1, name="fc"),
        helper.make_node("Softmax", ["y"], ["out"], axis=1, name="softmax"),
    ]
    return _model(nodes, [_vi("x", [batch, 3, 9, 9])], [_vi("out", [batch, 5])], inits, opset), dict(inits)


def _reference(model, *inputs):
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))


def test_a_small_cnn_matches_the_reference_eagerly_and_compiled(dev, rng):
    model, _ = _cnn(rng)
    m = honnx.load(model, dev)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    (expected,) = _reference(model, x)
    assert_close(m(x), expected, rtol=1e-4, atol=1e-6, what="eager")
    run = hetero.compile(m)
    for _ in range(2):
        x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
        (expected,) = _reference(model, x)
        assert_close(run(x), expected, rtol=1e-4, atol=1e-6, what="compiled")


def test_initializers_become_parameters_and_buffers_named_as_in_the_model(dev, rng):
    model, inits = _cnn(rng)
    m = honnx.load(model, dev)
    params = dict(m.named_parameters())
    assert sorted(params) == ["bn.bias", "bn.weight", "conv.bias", "conv.weight", "fc.bias", "fc.weight"]
    assert all(p.requires_grad for p in params.values())
    assert sorted(dict(m.named_buffers())) == ["bn.running_mean", "bn.running_var"]
    state = m.state_dict()
    assert sorted(state) == sorted(inits)
    for name, value in inits.items():
        np.testing.assert_array_equal(state[name].numpy(), value)
    assert not m.training  # an inference graph until train() is called


def test_the_loaded_model_trains(dev, rng):
    """x -> Gemm -> logits: one SGD step moves the weight by lr times the analytic cross-entropy gradient."""
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    model = _model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], [_vi("x", [6, 4])], [_vi("y", [6, 3])],
                   [("w", w), ("b", b)])
    m = honnx.load(model, dev).train()
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = rng.integers(0, 3, 6).astype(np.int32)
    logits = x.astype(np.float64) @ w.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(6), t] -= 1
    grad_w, grad_b = p.T @ x / 6, p.sum(0) / 6
    step = hetero.compile_step(m, F.cross_entropy, hetero.optim.SGD(m.parameters(), lr=0.5))
    step(x, t)
    state = m.state_dict()
    assert_close(state["w"], w - 0.5 * grad_w, rtol=1e-5, atol=1e-5, what="weight after a step")
    assert_close(state["b"], b - 0.5 * grad_b, rtol=1e-5, atol=1e-5, what="bias after a step")


def test_batch_norm_uses_batch_statistics_after_train(dev, rng):
    model, inits = _cnn(rng)
    m = honnx.load(model, dev).train()
    m(rng.standard_normal((2, 3, 9, 9)).astype(np.float32))
    moved = m.state_dict()["bn.running_mean"].numpy()
    assert not np.allclose(moved, inits["bn.running_mean"])  # torch's momentum 0.1 = 1 - ONNX's default 0.9


def test_shape_arithmetic_with_a_symbolic_batch_runs_on_the_host(dev, rng):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as PyTorch exports a flatten with a dynamic batch."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["y"]),
    ]
    w = rng.standard_normal((12, 2)).astype(np.float32)
    inits = [("zero", np.array(0, np.int64)), ("axes", np.array([0], np.int64)), ("minus1", np.array([-1], np.int64)),
             ("w", w)]
    model = _model(nodes, [_vi("x", ["N", 3, 4])], [_vi("y", ["N", 2])], inits)
    m = honnx.load(model, dev)
    for n in (1, 5):
        x = rng.standard_normal((n, 3, 4)).astype(np.float32)
        assert_close(m(x), x.reshape(n, 12) @ w, rtol=1e-5, atol=1e-5, what=f"batch {n}")


def test_constants_fold_at_load_and_only_initializers_are_state(dev, rng):
    """ConstantOfShape -> Mul (a folded constant on the device) -> Sub and Div of a Constant (negated and
    inverted once, at load) -> Div by an initializer (a parameter: its gradient flows through the reciprocal)."""
    c = np.array([0.5, 2.0, -4.0], np.float32)
    d = np.array([1.5, -0.5, 3.0], np.float32)
    nodes = [
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([2, 3], np.int64))),
        helper.make_node("ConstantOfShape", ["shape"], ["k"],
                         value=numpy_helper.from_array(np.array([1.5], np.float32))),
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(c)),
        helper.make_node("Mul", ["x", "k"], ["y"]),
        helper.make_node("Sub", ["y", "c"], ["z"]),
        helper.make_node("Div", ["z", "c"], ["u"]),
        helper.make_node("Div", ["u", "d"], ["out"]),
    ]
    model = _model(nodes, [_vi("x", [2, 3])], [_vi("out", [2, 3])], [("d", d)])
    m = honnx.load(model, dev)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    u = (x.astype(np.float64) * 1.5 - c) / c
    out = m(x)
    assert_close(out, u / d, rtol=1e-6, atol=1e-6, what="folded constants")
    assert list(m.state_dict()) == ["d"]
    F.mul(out, 1.0).backward(hetero.ones(out.shape, device=dev))
    assert_close(m.d.grad, (-u / d**2).sum(0), rtol=1e-5, atol=1e-5, what="gradient of the initializer divisor")


@pytest.mark.parametrize("opset,expected_axes", [(11, (1, 2, 3)), (13, (1,))])
def test_softmax_normalises_over_the_flattened_input_before_opset_13(dev, rng, opset, expected_axes):
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [_vi("x", [2, 3, 2, 2])],
                   [_vi("y", [2, 3, 2, 2])], opset=opset)
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    e = np.exp(x - x.max(axis=expected_axes, keepdims=True))
    assert_close(honnx.load(model, dev)(x), e / e.sum(axis=expected_axes, keepdims=True), rtol=1e-5, atol=1e-6,
                 what=f"softmax at opset {opset}")


def test_load_takes_a_path_and_bytes(dev, rng, tmp_path):
    model, _ = _cnn(rng)
    path = tmp_path / "cnn.onnx"
    onnx.save(model, str(path))
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    (expected,) = _reference(model, x)
    assert_close(honnx.load(path, dev)(x), expected, rtol=1e-4, atol=1e-6, what="from a path")
    assert_close(honnx.load(model.SerializeToString(), dev)(x), expected, rtol=1e-4, atol=1e-6, what="from bytes")


def test_initializer_names_that_clash_are_kept_reachable(dev):
    """'a' is a tensor and 'a.b' needs 'a' to be a level: the second is renamed, and onnx_names says so."""
    nodes = [helper.make_node("Add", ["x", "a"], ["y"]), helper.make_node("Mul", ["y", "a.b"], ["z"])]
    model = _model(nodes, [_vi("x", [2])], [_vi("z", [2])],
                   [("a", np.array([1.0, 2.0], np.float32)), ("a.b", np.array([3.0, 4.0], np.float32))])
    m = honnx.load(model, dev)
    assert sorted(m.state_dict()) == ["a", "a_b"]
    assert m.onnx_names == {"a_b": "a.b"}
    assert_close(m(np.array([1.0, 1.0], np.float32)), np.array([6.0, 12.0]), rtol=0, atol=0, what="clash")


def test_a_wrong_input_shape_is_refused_at_forward(dev, rng):
    model, _ = _cnn(rng)
    m = honnx.load(model, dev)
    with pytest.raises(ValueError, match=r"ONNX input 'x' has shape \(1, 3, 9, 9\) but the model declares "
                                         r"\(2, 3, 9, 9\)"):
        m(np.zeros((1, 3, 9, 9), np.float32))


# ---------------------------------------------------------------- refusals at load

def _one_node(op, opset=17, inputs=("x",), shape=(2, 3, 4, 4), elem=TensorProto.FLOAT, **attrs):
    node = helper.make_node(op, list(inputs), ["y"], name="the_node", **attrs)
    graph = helper.make_graph([node], "g", [_vi(n, list(shape), elem) for n in inputs], [_vi("y", None, elem)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_an_unsupported_op_is_refused_naming_the_node_and_the_supported_ops(dev):
    with pytest.raises(honnx.UnsupportedModelError, match=r"ONNX node 'the_node' \(Erf, opset 17\): op Erf is not "
                                                          r"imported\. Supported: Add, AveragePool, .*Unsqueeze"):
        honnx.load(_one_node("Erf"), dev)


def test_an_unsupported_opset_is_refused(dev):
    with pytest.raises(honnx.UnsupportedModelError, match=r"opset 5; hetero imports opsets 6 to \d+"):
        honnx.load(_one_node("Relu", opset=5), dev)


def test_an_unsupported_attribute_is_refused(dev):
    with pytest.raises(honnx.UnsupportedModelError, match=r"'the_node' \(Relu, opset 17\): attribute alpha is not "
                                                          r"imported\. Supported: Relu attributes \(none\)"):
        honnx.load(_one_node("Relu", alpha=1.0), dev)


def test_integer_data_on_the_device_is_refused(dev):
    with pytest.raises(honnx.UnsupportedModelError, match=r"ONNX input 'x' has data type INT64 and device ops read "
                                                          r"it; hetero's device tensors are float32"):
        honnx.load(_one_node("Relu", elem=TensorProto.INT64), dev)


def test_three_d_convolution_is_refused_at_load(dev):
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="c3")], [_vi("x", [1, 2, 4, 4, 4])],
                   [_vi("y", [1, 2, 2, 2, 2])], [("w", np.zeros((2, 2, 3, 3, 3), np.float32))])
    expected = r"'c3' \(Conv, opset 17\): 3-D convolution \(input rank 5\); hetero convolves 1-D and 2-D inputs\. " \
               r"Supported: Conv as "
    with pytest.raises(honnx.UnsupportedModelError, match=expected):
        honnx.load(model, dev)


def test_an_even_lrn_size_is_refused(dev):
    with pytest.raises(honnx.UnsupportedModelError, match=r"an even LRN size \(4\)"):
        honnx.load(_one_node("LRN", size=4), dev)


def test_gather_of_device_data_is_refused(dev):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "i"], ["y"], name="g")]
    model = _model(nodes, [_vi("x", [3, 2])], [_vi("y", [2, 2])], [("i", np.array([0, 2], np.int64))])
    with pytest.raises(honnx.UnsupportedModelError, match=r"'g' \(Gather, opset 17\): Gather is imported only where "
                                                          r"it computes on constants or shapes"):
        honnx.load(model, dev)


def test_another_domain_is_refused(dev):
    node = helper.make_node("LinearRegressor", ["x"], ["y"], domain="ai.onnx.ml", name="lr")
    graph = helper.make_graph([node], "g", [_vi("x", [2, 3])], [_vi("y", [2, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    with pytest.raises(honnx.UnsupportedModelError, match=r"domain 'ai.onnx.ml' is not imported"):
        honnx.load(model, dev)


# ---------------------------------------------------------------- the registry

def test_the_registry_implements_every_schema_version_from_opset_6_to_the_newest():
    """Each op lists exactly the schema versions onnx has for it from the one opset 6 selects on, so a newer
    onnx's new version of an op is refused until someone checks the converter against it."""
    history = {}
    for schema in defs.get_all_schemas_with_history():
        if schema.domain == "":
            history.setdefault(schema.name, set()).add(schema.since_version)
    for op, spec in honnx.OPS.items():
        first = max((v for v in history[op] if v <= honnx.MIN_OPSET), default=min(history[op]))
        assert spec.versions == tuple(sorted(v for v in history[op] if v >= first)), op


def test_the_registry_reads_only_attributes_onnx_defines():
    known = {}
    for schema in defs.get_all_schemas_with_history():
        if schema.domain == "":
            known.setdefault(schema.name, set()).update(schema.attributes)
    for op, spec in honnx.OPS.items():
        assert spec.attributes <= known[op], (op, sorted(spec.attributes - known[op]))


def test_a_large_max_pool_window_runs_as_two_passes(dev, rng):
    """A 9x9 window (over MAX_POOL_TAPS) is pooled by rows then columns: same values, same gradient."""
    from hetero.onnx import ops

    assert 9 * 9 > ops.MAX_POOL_TAPS
    model = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[9, 9], strides=[2, 3], pads=[4, 2, 4, 2],
                                     dilations=[1, 2])], [_vi("x", [1, 2, 20, 23])], [_vi("y", [1, 2, 10, 4])])
    x = rng.standard_normal((1, 2, 20, 23)).astype(np.float32)
    (expected,) = _reference(model, x)
    m = honnx.load(model, dev)
    X = hetero.tensor(x, device=dev, requires_grad=True)
    y = m(X)
    assert_close(y, expected, rtol=0, atol=0, what="two-pass max pool")
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(hetero.tensor(g, device=dev))
    X1 = hetero.tensor(x, device=dev, requires_grad=True)
    F.max_pool2d(X1, (9, 9), (2, 3), (4, 2), (1, 2)).backward(hetero.tensor(g, device=dev))
    assert_close(X.grad, X1.grad.numpy(), rtol=0, atol=1e-6, what="two-pass max pool gradient")


def test_an_embedding_lookup_is_refused_rather_than_frozen(dev):
    """Gather of a float initializer at run-time indices would run on the host, where the weight cannot train."""
    node = helper.make_node("Gather", ["weight", "ids"], ["y"], name="embed")
    graph = helper.make_graph([node], "g", [_vi("ids", [4], TensorProto.INT64)], [_vi("y", [4, 3])],
                              [numpy_helper.from_array(np.zeros((10, 3), np.float32), "weight")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(honnx.UnsupportedModelError, match=r"'embed' \(Gather, opset 17\): Gather of initializer "
                                                          r"'weight' with inputs known only at run time"):
        honnx.load(model, dev)
