"""Just enough of three protobuf schemas to read model files without their frameworks.

The message classes are built at run time from field tables (google.protobuf's descriptor API), so no
generated `_pb2` module, `protoc` or framework is needed:
- Caffe (`caffe.proto`, BVLC upstream field numbers): NetParameter with the layer parameters of the layer
  types `caffe_net` runs, plus the training-only fields deploy files still carry (param, fillers,
  include/exclude) so those parse. A field outside this subset is a parse error naming its line.
- TensorFlow GraphDef: node names, ops, inputs and attributes (scalars, lists, shapes, dtypes and constant
  tensors) — to read the declared input of a frozen graph and run it (`tf_graphdef`). Fields not listed
  here (function attributes, the graph's function library and versions) are kept as unknown fields when
  parsing binary files.
- ONNX ModelProto: graph inputs/outputs with their shapes and the initializer names.

`caffe()`, `tensorflow()`, `onnx()` return {message name: class}; classes are built once per process.
"""

from __future__ import annotations

import functools

# Field: (name, number, type, label[, default]) — type: a scalar name, 'enum:Name' (an enum declared in
# the same table) or a message name; label: 'opt', 'rep' or 'packed' (repeated, packed on write).
_SCALARS = {"double": 1, "float": 2, "int64": 3, "uint64": 4, "int32": 5, "bool": 8, "string": 9, "bytes": 12,
            "uint32": 13}

_FILLER = "FillerParameter"
_CAFFE_ENUMS = {  # "Message.Enum" is nested in that message (enum value names are scoped like C++)
    "Phase": {"TRAIN": 0, "TEST": 1},
    "Engine": {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2},
    "FillerParameter.VarianceNorm": {"FAN_IN": 0, "FAN_OUT": 1, "AVERAGE": 2},
    "ParamSpec.DimCheckMode": {"STRICT": 0, "PERMISSIVE": 1},
    "PoolingParameter.PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2},
    "PoolingParameter.RoundMode": {"CEIL": 0, "FLOOR": 1},
    "EltwiseParameter.EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2},
    "LossParameter.NormalizationMode": {"FULL": 0, "VALID": 1, "BATCH_SIZE": 2, "NONE": 3},
}
_CAFFE = {
    "BlobShape": [("dim", 1, "int64", "packed")],
    "BlobProto": [("shape", 7, "BlobShape", "opt"), ("data", 5, "float", "packed"), ("diff", 6, "float", "packed"),
                  ("double_data", 8, "double", "packed"), ("double_diff", 9, "double", "packed"),
                  ("num", 1, "int64", "opt"), ("channels", 2, "int64", "opt"), ("height", 3, "int64", "opt"),
                  ("width", 4, "int64", "opt")],
    _FILLER: [("type", 1, "string", "opt", "constant"), ("value", 2, "float", "opt"), ("min", 3, "float", "opt"),
              ("max", 4, "float", "opt", "1"), ("mean", 5, "float", "opt"), ("std", 6, "float", "opt", "1"),
              ("sparse", 7, "int32", "opt", "-1"), ("variance_norm", 8, "enum:FillerParameter.VarianceNorm", "opt")],
    "NetState": [("phase", 1, "enum:Phase", "opt", "TEST"), ("level", 2, "int32", "opt"), ("stage", 3, "string", "rep")],
    "NetStateRule": [("phase", 1, "enum:Phase", "opt"), ("min_level", 2, "int32", "opt"),
                     ("max_level", 3, "int32", "opt"), ("stage", 4, "string", "rep"), ("not_stage", 5, "string", "rep")],
    "ParamSpec": [("name", 1, "string", "opt"), ("share_mode", 2, "enum:ParamSpec.DimCheckMode", "opt"),
                  ("lr_mult", 3, "float", "opt", "1"), ("decay_mult", 4, "float", "opt", "1")],
    "NetParameter": [("name", 1, "string", "opt"), ("input", 3, "string", "rep"), ("input_shape", 8, "BlobShape", "rep"),
                     ("input_dim", 4, "int32", "rep"), ("force_backward", 5, "bool", "opt"),
                     ("state", 6, "NetState", "opt"), ("debug_info", 7, "bool", "opt"),
                     ("layer", 100, "LayerParameter", "rep"), ("layers", 2, "V1LayerParameter", "rep")],
    # V1 (pre-2015) layers: only what is needed to find weight blobs by layer name in old .caffemodel files
    "V1LayerParameter": [("bottom", 2, "string", "rep"), ("top", 3, "string", "rep"), ("name", 4, "string", "opt"),
                         ("type", 5, "int32", "opt"), ("blobs", 6, "BlobProto", "rep")],
    "TransformationParameter": [("scale", 1, "float", "opt", "1"), ("mirror", 2, "bool", "opt"),
                                ("crop_size", 3, "uint32", "opt"), ("mean_file", 4, "string", "opt"),
                                ("mean_value", 5, "float", "rep"), ("force_color", 6, "bool", "opt"),
                                ("force_gray", 7, "bool", "opt")],
    "LossParameter": [("ignore_label", 1, "int32", "opt"), ("normalization", 3, "enum:LossParameter.NormalizationMode", "opt", "VALID"),
                      ("normalize", 2, "bool", "opt")],
    "AccuracyParameter": [("top_k", 1, "uint32", "opt", "1"), ("axis", 2, "int32", "opt", "1"),
                          ("ignore_label", 3, "int32", "opt")],
    "ConvolutionParameter": [("num_output", 1, "uint32", "opt"), ("bias_term", 2, "bool", "opt", "true"),
                             ("pad", 3, "uint32", "rep"), ("kernel_size", 4, "uint32", "rep"),
                             ("stride", 6, "uint32", "rep"), ("dilation", 18, "uint32", "rep"),
                             ("pad_h", 9, "uint32", "opt"), ("pad_w", 10, "uint32", "opt"),
                             ("kernel_h", 11, "uint32", "opt"), ("kernel_w", 12, "uint32", "opt"),
                             ("stride_h", 13, "uint32", "opt"), ("stride_w", 14, "uint32", "opt"),
                             ("group", 5, "uint32", "opt", "1"), ("weight_filler", 7, _FILLER, "opt"),
                             ("bias_filler", 8, _FILLER, "opt"), ("engine", 15, "enum:Engine", "opt"),
                             ("axis", 16, "int32", "opt", "1"), ("force_nd_im2col", 17, "bool", "opt")],
    "InnerProductParameter": [("num_output", 1, "uint32", "opt"), ("bias_term", 2, "bool", "opt", "true"),
                              ("weight_filler", 3, _FILLER, "opt"), ("bias_filler", 4, _FILLER, "opt"),
                              ("axis", 5, "int32", "opt", "1"), ("transpose", 6, "bool", "opt")],
    # pad/kernel_size/stride are `optional` upstream and `repeated` (Y, X) in some forks: repeated reads both
    "PoolingParameter": [("pool", 1, "enum:PoolingParameter.PoolMethod", "opt", "MAX"), ("pad", 4, "uint32", "rep"),
                         ("pad_h", 9, "uint32", "opt"), ("pad_w", 10, "uint32", "opt"),
                         ("kernel_size", 2, "uint32", "rep"), ("kernel_h", 5, "uint32", "opt"),
                         ("kernel_w", 6, "uint32", "opt"), ("stride", 3, "uint32", "rep"),
                         ("stride_h", 7, "uint32", "opt"), ("stride_w", 8, "uint32", "opt"),
                         ("engine", 11, "enum:Engine", "opt"), ("global_pooling", 12, "bool", "opt"),
                         ("round_mode", 13, "enum:PoolingParameter.RoundMode", "opt", "CEIL")],
    "PReLUParameter": [("filler", 1, _FILLER, "opt"), ("channel_shared", 2, "bool", "opt")],
    "ReLUParameter": [("negative_slope", 1, "float", "opt"), ("engine", 2, "enum:Engine", "opt")],
    "EltwiseParameter": [("operation", 1, "enum:EltwiseParameter.EltwiseOp", "opt", "SUM"), ("coeff", 2, "float", "rep"),
                         ("stable_prod_grad", 3, "bool", "opt", "true")],
    "BatchNormParameter": [("use_global_stats", 1, "bool", "opt"),
                           ("moving_average_fraction", 2, "float", "opt", "0.999"),
                           ("eps", 3, "float", "opt", "1e-05")],
    "ScaleParameter": [("axis", 1, "int32", "opt", "1"), ("num_axes", 2, "int32", "opt", "1"),
                       ("filler", 3, _FILLER, "opt"), ("bias_term", 4, "bool", "opt"), ("bias_filler", 5, _FILLER, "opt")],
    "BiasParameter": [("axis", 1, "int32", "opt", "1"), ("num_axes", 2, "int32", "opt", "1"),
                      ("filler", 3, _FILLER, "opt")],
    "FlattenParameter": [("axis", 1, "int32", "opt", "1"), ("end_axis", 2, "int32", "opt", "-1")],
    "ReshapeParameter": [("shape", 1, "BlobShape", "opt"), ("axis", 2, "int32", "opt"),
                         ("num_axes", 3, "int32", "opt", "-1")],
    "ConcatParameter": [("axis", 2, "int32", "opt", "1"), ("concat_dim", 1, "uint32", "opt", "1")],
    "SliceParameter": [("axis", 3, "int32", "opt", "1"), ("slice_point", 2, "uint32", "rep"),
                       ("slice_dim", 1, "uint32", "opt", "1")],
    "DropoutParameter": [("dropout_ratio", 1, "float", "opt", "0.5")],
    "InputParameter": [("shape", 1, "BlobShape", "rep")],
    "SoftmaxParameter": [("engine", 1, "enum:Engine", "opt"), ("axis", 2, "int32", "opt", "1")],
    "SigmoidParameter": [("engine", 1, "enum:Engine", "opt")],
    "TanHParameter": [("engine", 1, "enum:Engine", "opt")],
    "LayerParameter": [("name", 1, "string", "opt"), ("type", 2, "string", "opt"), ("bottom", 3, "string", "rep"),
                       ("top", 4, "string", "rep"), ("phase", 10, "enum:Phase", "opt"),
                       ("loss_weight", 5, "float", "rep"), ("param", 6, "ParamSpec", "rep"),
                       ("blobs", 7, "BlobProto", "rep"), ("propagate_down", 11, "bool", "rep"),
                       ("include", 8, "NetStateRule", "rep"), ("exclude", 9, "NetStateRule", "rep"),
                       ("transform_param", 100, "TransformationParameter", "opt"),
                       ("loss_param", 101, "LossParameter", "opt"),
                       ("accuracy_param", 102, "AccuracyParameter", "opt"),
                       ("batch_norm_param", 139, "BatchNormParameter", "opt"),
                       ("bias_param", 141, "BiasParameter", "opt"),
                       ("concat_param", 104, "ConcatParameter", "opt"),
                       ("convolution_param", 106, "ConvolutionParameter", "opt"),
                       ("dropout_param", 108, "DropoutParameter", "opt"),
                       ("eltwise_param", 110, "EltwiseParameter", "opt"),
                       ("flatten_param", 135, "FlattenParameter", "opt"),
                       ("inner_product_param", 117, "InnerProductParameter", "opt"),
                       ("input_param", 143, "InputParameter", "opt"),
                       ("pooling_param", 121, "PoolingParameter", "opt"),
                       ("prelu_param", 131, "PReLUParameter", "opt"),
                       ("relu_param", 123, "ReLUParameter", "opt"),
                       ("reshape_param", 133, "ReshapeParameter", "opt"),
                       ("scale_param", 142, "ScaleParameter", "opt"),
                       ("sigmoid_param", 124, "SigmoidParameter", "opt"),
                       ("softmax_param", 125, "SoftmaxParameter", "opt"),
                       ("slice_param", 126, "SliceParameter", "opt"),
                       ("tanh_param", 127, "TanHParameter", "opt")],
}

_TF = {  # tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto field numbers
    "Dim": [("size", 1, "int64", "opt"), ("name", 2, "string", "opt")],
    "TensorShapeProto": [("dim", 2, "Dim", "rep"), ("unknown_rank", 3, "bool", "opt")],
    "TensorProto": [("dtype", 1, "int32", "opt"), ("tensor_shape", 2, "TensorShapeProto", "opt"),
                    ("version_number", 3, "int32", "opt"), ("tensor_content", 4, "bytes", "opt"),
                    ("half_val", 13, "int32", "packed"), ("float_val", 5, "float", "packed"),
                    ("double_val", 6, "double", "packed"), ("int_val", 7, "int32", "packed"),
                    ("string_val", 8, "bytes", "rep"), ("int64_val", 10, "int64", "packed"),
                    ("bool_val", 11, "bool", "packed"), ("uint32_val", 16, "uint32", "packed"),
                    ("uint64_val", 17, "uint64", "packed")],
    "ListValue": [("s", 2, "bytes", "rep"), ("i", 3, "int64", "packed"), ("f", 4, "float", "packed"),
                  ("b", 5, "bool", "packed"), ("type", 6, "int32", "packed"), ("shape", 7, "TensorShapeProto", "rep"),
                  ("tensor", 8, "TensorProto", "rep")],
    "AttrValue": [("list", 1, "ListValue", "opt"), ("s", 2, "bytes", "opt"), ("i", 3, "int64", "opt"),
                  ("f", 4, "float", "opt"), ("b", 5, "bool", "opt"), ("type", 6, "int32", "opt"),
                  ("shape", 7, "TensorShapeProto", "opt"), ("tensor", 8, "TensorProto", "opt"),
                  ("placeholder", 9, "string", "opt")],
    "NodeDef": [("name", 1, "string", "opt"), ("op", 2, "string", "opt"), ("input", 3, "string", "rep"),
                ("device", 4, "string", "opt"), ("attr", 5, "map:AttrValue", "rep")],
    "GraphDef": [("node", 1, "NodeDef", "rep")],
}

_ONNX = {
    "Dimension": [("dim_value", 1, "int64", "opt"), ("dim_param", 2, "string", "opt")],
    "TensorShapeProto": [("dim", 1, "Dimension", "rep")],
    "TensorType": [("elem_type", 1, "int32", "opt"), ("shape", 2, "TensorShapeProto", "opt")],
    "TypeProto": [("tensor_type", 1, "TensorType", "opt")],
    "ValueInfoProto": [("name", 1, "string", "opt"), ("type", 2, "TypeProto", "opt")],
    # every place a tensor can sit (initializers, node attributes, subgraphs, functions, training info), with
    # the fields that say where its bytes are: `models.onnx_file` finds and checks external data through them
    "StringStringEntryProto": [("key", 1, "string", "opt"), ("value", 2, "string", "opt")],
    "TensorProto": [("dims", 1, "int64", "rep"), ("data_type", 2, "int32", "opt"), ("name", 8, "string", "opt"),
                    ("raw_data", 9, "bytes", "opt"), ("external_data", 13, "StringStringEntryProto", "rep"),
                    ("data_location", 14, "int32", "opt")],
    "SparseTensorProto": [("values", 1, "TensorProto", "opt"), ("indices", 2, "TensorProto", "opt")],
    "AttributeProto": [("name", 1, "string", "opt"), ("t", 5, "TensorProto", "opt"), ("g", 6, "GraphProto", "opt"),
                       ("tensors", 10, "TensorProto", "rep"), ("graphs", 11, "GraphProto", "rep"),
                       ("sparse_tensor", 22, "SparseTensorProto", "opt"),
                       ("sparse_tensors", 23, "SparseTensorProto", "rep")],
    "NodeProto": [("name", 3, "string", "opt"), ("op_type", 4, "string", "opt"),
                  ("attribute", 5, "AttributeProto", "rep")],
    "GraphProto": [("node", 1, "NodeProto", "rep"), ("name", 2, "string", "opt"),
                   ("initializer", 5, "TensorProto", "rep"), ("sparse_initializer", 15, "SparseTensorProto", "rep"),
                   ("input", 11, "ValueInfoProto", "rep"), ("output", 12, "ValueInfoProto", "rep")],
    "FunctionProto": [("name", 1, "string", "opt"), ("node", 7, "NodeProto", "rep"),
                      ("attribute_proto", 11, "AttributeProto", "rep")],
    "TrainingInfoProto": [("initialization", 1, "GraphProto", "opt"), ("algorithm", 2, "GraphProto", "opt")],
    "ModelProto": [("ir_version", 1, "int64", "opt"), ("producer_name", 2, "string", "opt"),
                   ("graph", 7, "GraphProto", "opt"), ("training_info", 20, "TrainingInfoProto", "rep"),
                   ("functions", 25, "FunctionProto", "rep")],
}


def _build(package: str, messages: dict, enums: dict | None = None) -> dict:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name=f"arface_{package}.proto", package=package, syntax="proto2")
    protos = {mname: fdp.message_type.add(name=mname) for mname in messages}
    for ename, values in (enums or {}).items():
        owner, _, short = ename.rpartition(".")
        e = (protos[owner].enum_type if owner else fdp.enum_type).add(name=short)
        for vname, num in values.items():
            e.value.add(name=vname, number=num)
    for mname, fields in messages.items():
        m = protos[mname]
        for entry in fields:
            fname, number, ftype, label = entry[:4]
            f = m.field.add(name=fname, number=number,
                            label=F.LABEL_OPTIONAL if label == "opt" else F.LABEL_REPEATED)
            if label == "packed":
                f.options.packed = True
            if len(entry) > 4:
                f.default_value = entry[4]
            if ftype in _SCALARS:
                f.type = _SCALARS[ftype]
            elif ftype.startswith("enum:"):
                f.type, f.type_name = F.TYPE_ENUM, f".{package}.{ftype[5:]}"
            elif ftype.startswith("map:"):  # map<string, V> as a nested *Entry message
                entry_name = fname[0].upper() + fname[1:] + "Entry"
                nested = m.nested_type.add(name=entry_name)
                nested.options.map_entry = True
                nested.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                nested.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                                 type_name=f".{package}.{ftype[4:]}")
                f.type, f.type_name = F.TYPE_MESSAGE, f".{package}.{mname}.{entry_name}"
            else:
                f.type, f.type_name = F.TYPE_MESSAGE, f".{package}.{ftype}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in messages}


@functools.cache
def caffe() -> dict:
    return _build("caffe", _CAFFE, _CAFFE_ENUMS)


@functools.cache
def tensorflow() -> dict:
    return _build("tensorflow", _TF)


@functools.cache
def onnx() -> dict:
    return _build("onnx", _ONNX)
