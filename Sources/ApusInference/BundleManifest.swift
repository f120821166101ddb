import Foundation

/// `<repo>/<model>/<version>/manifest.json`: what a model version is and how to serve it.
/// See docs/bundles.md for the format. Value type, decoded once at load.
public struct BundleManifest: Codable, Sendable, Equatable {
    public struct TensorSpec: Codable, Sendable, Equatable {
        public var name: String
        public var datatype: String
        /// -1 for the batch dimension.
        public var shape: [Int]
        /// Column names of a [N, F] input, for users and drift reports.
        public var features: [String]?

        public init(name: String, datatype: String, shape: [Int], features: [String]? = nil) {
            self.name = name
            self.datatype = datatype
            self.shape = shape
            self.features = features
        }
    }

    public struct Batching: Codable, Sendable, Equatable {
        public var maxBatchSize: Int?
        public var maxQueueDelayMicroseconds: Int?
        public var preferredBatchSizes: [Int]?
        public var maxQueueRows: Int?

        public init(maxBatchSize: Int? = nil, maxQueueDelayMicroseconds: Int? = nil, preferredBatchSizes: [Int]? = nil, maxQueueRows: Int? = nil) {
            self.maxBatchSize = maxBatchSize
            self.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
            self.preferredBatchSizes = preferredBatchSizes
            self.maxQueueRows = maxQueueRows
        }

        enum CodingKeys: String, CodingKey {
            case maxBatchSize = "max_batch_size"
            case maxQueueDelayMicroseconds = "max_queue_delay_us"
            case preferredBatchSizes = "preferred_batch_sizes"
            case maxQueueRows = "max_queue_rows"
        }
    }

    public struct Training: Codable, Sendable, Equatable {
        public var metrics: [String: Double]?
        public var dataVersion: String?

        public init(metrics: [String: Double]? = nil, dataVersion: String? = nil) {
            self.metrics = metrics
            self.dataVersion = dataVersion
        }
        enum CodingKeys: String, CodingKey {
            case metrics
            case dataVersion = "data_version"
        }
    }

    public var name: String
    public var version: Int
    public var modelFile: String
    public var inputs: [TensorSpec]
    public var outputs: [TensorSpec]?
    public var batching: Batching?
    public var training: Training?
    /// A .npy file of training inputs: the drift reference and the warm-up / validation sample.
    public var referenceSample: String?
    /// File name -> lower-case hex SHA-256. Every listed file must match before the version serves.
    public var sha256: [String: String]

    public init(name: String, version: Int, modelFile: String, inputs: [TensorSpec], outputs: [TensorSpec]?, batching: Batching?,
                training: Training?, referenceSample: String?, sha256: [String: String]) {
        self.name = name
        self.version = version
        self.modelFile = modelFile
        self.inputs = inputs
        self.outputs = outputs
        self.batching = batching
        self.training = training
        self.referenceSample = referenceSample
        self.sha256 = sha256
    }

    enum CodingKeys: String, CodingKey {
        case name, version, inputs, outputs, batching, training, sha256
        case modelFile = "model_file"
        case referenceSample = "reference_sample"
    }
}
