/// A model graph as plain values, independent of the file format it came from (ApusONNX builds it
/// from ONNX protobuf). Immutable value types.
public struct GraphSpec: Sendable {
    public struct ValueSpec: Sendable, Equatable {
        public var name: String
        public var elementType: Tensor.ElementType?
        /// nil dimensions are symbolic (the batch axis).
        public var shape: [Int?]?
        public init(name: String, elementType: Tensor.ElementType?, shape: [Int?]?) {
            self.name = name
            self.elementType = elementType
            self.shape = shape
        }
    }

    public enum Attribute: Sendable, Equatable {
        case int(Int64), ints([Int64]), float(Float), floats([Float]), string(String), strings([String]), tensor(Tensor)
    }

    public struct Node: Sendable {
        public var name: String
        public var opType: String
        /// "" or "ai.onnx" for the default domain, "ai.onnx.ml" for the ML ops.
        public var domain: String
        public var inputs: [String]
        public var outputs: [String]
        public var attributes: [String: Attribute]
        public init(name: String, opType: String, domain: String, inputs: [String], outputs: [String], attributes: [String: Attribute]) {
            self.name = name
            self.opType = opType
            self.domain = domain
            self.inputs = inputs
            self.outputs = outputs
            self.attributes = attributes
        }
    }

    public var inputs: [ValueSpec]
    public var outputs: [ValueSpec]
    public var initializers: [String: Tensor]
    /// In topological order (ONNX requires it; `CompiledModel` checks it).
    public var nodes: [Node]

    public init(inputs: [ValueSpec], outputs: [ValueSpec], initializers: [String: Tensor], nodes: [Node]) {
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.nodes = nodes
    }
}
