/// Builds a kernel for a node, validating its attributes. The one list of supported ops: an op
/// missing here is a load error naming the node and op, never a wrong answer.
enum OpRegistry {
    static func make(_ node: GraphSpec.Node, initializers: [String: Tensor]) throws -> any Kernel {
        let a = AttributeReader(node: node)
        let name = node.name.isEmpty ? node.opType : node.name
        switch (node.domain, node.opType) {
        case ("ai.onnx.ml", "TreeEnsembleClassifier"), ("ai.onnx.ml", "TreeEnsembleRegressor"):
            let classifier = node.opType == "TreeEnsembleClassifier"
            var attributes = TreeEnsemble.Attributes()
            attributes.nodeTreeIDs = try a.ints("nodes_treeids")
            attributes.nodeIDs = try a.ints("nodes_nodeids")
            attributes.featureIDs = try a.ints("nodes_featureids")
            attributes.values = try a.floats("nodes_values")
            attributes.modes = try a.strings("nodes_modes")
            attributes.trueIDs = try a.ints("nodes_truenodeids")
            attributes.falseIDs = try a.ints("nodes_falsenodeids")
            attributes.missingTracksTrue = try a.ints("nodes_missing_value_tracks_true", default: [])
            let prefix = classifier ? "class" : "target"
            attributes.leafTreeIDs = try a.ints("\(prefix)_treeids")
            attributes.leafNodeIDs = try a.ints("\(prefix)_nodeids")
            attributes.leafTargets = try a.ints("\(prefix)_ids")
            attributes.leafWeights = try a.floats("\(prefix)_weights")
            attributes.baseValues = try a.floats("base_values", default: [])
            attributes.postTransform = try a.string("post_transform", default: "NONE")
            try a.reject(["nodes_values_as_tensor", "base_values_as_tensor", "\(prefix)_weights_as_tensor", "classlabels_strings"])
            if classifier {
                attributes.classLabels = try a.ints("classlabels_int64s")
            } else {
                attributes.aggregate = try a.string("aggregate_function", default: "SUM")
                attributes.targetCount = Int(try a.int("n_targets", default: 1))
            }
            return try TreeEnsemble(name: name, attributes)
        case ("ai.onnx.ml", "LinearClassifier"), ("ai.onnx.ml", "LinearRegressor"):
            let classifier = node.opType == "LinearClassifier"
            let coefficients = try a.floats("coefficients")
            let intercepts = try a.floats("intercepts", default: [])
            try a.reject(["classlabels_strings"])
            let labels = classifier ? try a.ints("classlabels_ints") : nil
            // multi_class (skl2onnx sets 1 for multinomial LogisticRegression) does not change
            // the scores: onnxruntime ignores it, and so do we (fixture logreg_3class_softmax).
            _ = try a.int("multi_class", default: 0)
            // Score columns: one per intercept; without intercepts one per class (one for two classes).
            let outputs: Int
            if let labels {
                outputs = intercepts.isEmpty ? (labels.count == 2 ? 1 : labels.count) : intercepts.count
            } else {
                outputs = Int(try a.int("targets", default: 1))
            }
            return try LinearModel(
                name: name, coefficients: coefficients, intercepts: intercepts, outputs: outputs,
                post: try a.string("post_transform", default: "NONE"), classLabels: labels
            )
        case ("ai.onnx.ml", "Scaler"):
            return Scaler(name: name, offset: try a.floats("offset", default: [0]), scale: try a.floats("scale", default: [1]))
        case ("ai.onnx.ml", "Normalizer"):
            return Normalizer(name: name, norm: try a.string("norm", default: "MAX"))
        case ("ai.onnx.ml", "Binarizer"):
            return Binarizer(name: name, threshold: try a.float("threshold", default: 0))
        case ("ai.onnx.ml", "Imputer"):
            try a.reject(["imputed_value_int64s", "replaced_value_int64"])
            return Imputer(name: name, values: try a.floats("imputed_value_floats"), replaced: try a.float("replaced_value_float", default: .nan))
        case ("ai.onnx.ml", "ArrayFeatureExtractor"):
            return ArrayFeatureExtractor(name: name)
        case ("ai.onnx.ml", "ZipMap"):
            try a.reject(["classlabels_strings"])
            return ZipMap(name: name, classCount: try a.ints("classlabels_int64s").count)
        case ("ai.onnx.ml", "OneHotEncoder"):
            try a.reject(["cats_strings"])
            return OneHotEncoder(name: name, categories: try a.ints("cats_int64s"), zeros: try a.int("zeros", default: 1) != 0)
        case ("", "Add"), ("", "Sub"), ("", "Mul"), ("", "Div"):
            guard let op = Elementwise.Op(rawValue: node.opType) else { break }
            return Elementwise(name: name, op: op)
        case ("", "MatMul"):
            return MatMul(name: name)
        case ("", "Gemm"):
            return MatMul(
                name: name, alpha: try a.float("alpha", default: 1), beta: try a.float("beta", default: 1),
                transA: try a.int("transA", default: 0) != 0, transB: try a.int("transB", default: 0) != 0
            )
        case ("", "Relu"), ("", "Sigmoid"), ("", "Tanh"), ("", "Identity"):
            guard let op = Unary.Op(rawValue: node.opType) else { break }
            return Unary(name: name, op: op)
        case ("", "Softmax"):
            return Softmax(name: name, axis: Int(try a.int("axis", default: -1)))
        case ("", "ArgMax"):
            guard try a.int("select_last_index", default: 0) == 0 else { throw RuntimeError("select_last_index=1 is not supported") }
            return ArgMax(name: name, axis: Int(try a.int("axis", default: 0)), keepDims: try a.int("keepdims", default: 1) != 0)
        case ("", "Cast"):
            let to = try a.int("to")
            guard let type = onnxElementType(to) else { throw RuntimeError("Cast to ONNX type \(to) is not supported") }
            return Cast(name: name, to: type)
        case ("", "Reshape"):
            return Reshape(name: name, flattenAxis: nil)
        case ("", "Flatten"):
            return Reshape(name: name, flattenAxis: Int(try a.int("axis", default: 1)))
        case ("", "Gather"):
            return Gather(name: name, axis: Int(try a.int("axis", default: 0)))
        case ("", "Concat"):
            return Concat(name: name, axis: Int(try a.int("axis")))
        default:
            break
        }
        throw RuntimeError("unsupported op \(node.domain.isEmpty ? "ai.onnx" : node.domain)::\(node.opType)")
    }

    /// ONNX TensorProto.DataType numbers.
    static func onnxElementType(_ code: Int64) -> Tensor.ElementType? {
        switch code {
        case 1: .float32
        case 6: .int32
        case 7: .int64
        case 8: .string
        case 9: .bool
        case 11: .float64
        default: nil
        }
    }
}

/// Typed, validated access to a node's attributes.
struct AttributeReader {
    let node: GraphSpec.Node

    private func missing(_ key: String) -> RuntimeError { RuntimeError("required attribute \(key) is missing") }
    private func wrongType(_ key: String, _ type: String) -> RuntimeError { RuntimeError("attribute \(key) must be \(type)") }

    func reject(_ keys: [String]) throws {
        for key in keys where node.attributes[key] != nil { throw RuntimeError("attribute \(key) is not supported") }
    }

    func int(_ key: String, default value: Int64? = nil) throws -> Int64 {
        switch node.attributes[key] {
        case .int(let v)?: return v
        case nil: if let value { return value }; throw missing(key)
        default: throw wrongType(key, "an int")
        }
    }

    func ints(_ key: String, default value: [Int64]? = nil) throws -> [Int64] {
        switch node.attributes[key] {
        case .ints(let v)?: return v
        case nil: if let value { return value }; throw missing(key)
        default: throw wrongType(key, "a list of ints")
        }
    }

    func float(_ key: String, default value: Float? = nil) throws -> Float {
        switch node.attributes[key] {
        case .float(let v)?: return v
        case nil: if let value { return value }; throw missing(key)
        default: throw wrongType(key, "a float")
        }
    }

    func floats(_ key: String, default value: [Float]? = nil) throws -> [Float] {
        switch node.attributes[key] {
        case .floats(let v)?: return v
        case nil: if let value { return value }; throw missing(key)
        default: throw wrongType(key, "a list of floats")
        }
    }

    func string(_ key: String, default value: String? = nil) throws -> String {
        switch node.attributes[key] {
        case .string(let v)?: return v
        case nil: if let value { return value }; throw missing(key)
        default: throw wrongType(key, "a string")
        }
    }

    func strings(_ key: String) throws -> [String] {
        switch node.attributes[key] {
        case .strings(let v)?: return v
        case nil: throw missing(key)
        default: throw wrongType(key, "a list of strings")
        }
    }
}
