import ApusCore
import Foundation
import Logging
import Synchronization

/// The model repository: `<root>/<model>/<version>/` bundles plus `<root>/<model>/model.json`
/// settings, turned into a serving `RepositorySnapshot`.
///
/// `reload()` scans the disk and loads what is new or changed; a version serves only after it
/// loaded, matched its checksums and ran its reference sample. The swap is availability
/// preserving: the new snapshot is built beside the old one and published in one step; versions
/// that leave it drain (their in-flight requests finish) before they are freed. A version that
/// fails never serves and the previous one keeps serving; the failure is kept (with its reason)
/// until the files change.
///
/// Threading: reloads are serialised by an internal lock (the poller, SIGHUP and admin calls may
/// race); `snapshot` is a lock-protected read of an immutable value, cheap on the request path.
public final class ModelRepository: Sendable {
    /// Counters for metrics; monotonically increasing.
    public struct Counters: Sendable, Equatable {
        public var loads = 0
        public var failures = 0
        public var unloads = 0
        public var reloads = 0
    }

    struct Entry {
        var lifecycle = VersionLifecycle()
        var served: ServedVersion?
        var fingerprint: String
        /// The last failed attempt to replace a serving version in place (same number, new files).
        var lastFailure: String?
    }

    struct State {
        var entries: [String: [Int: Entry]] = [:]
        var settings: [String: ModelSettings] = [:]
        var modelErrors: [String: String] = [:]
        /// Models taken out by an admin unload; a scan does not bring them back until `load`.
        var unloadedModels: Set<String> = []
        var draining: [ServedVersion] = []
        var generation = 0
        var counters = Counters()
        /// Every (model, version) known at the last publish: entries and draining ones.
        var known: Set<VersionID> = []
    }

    public let root: String
    private let workers: Int
    private let inlineBudgetNanos: UInt64
    /// Reads and validates one version's bundle (`BundleLoader.load`; tests wrap it).
    private let loadBundle: @Sendable (_ directory: String, _ model: String, _ version: Int) throws -> BundleLoader.Loaded
    private let logger: Logger
    private let state = Locked(State())
    private let current = Locked(Current())
    private let published = Locked<(statuses: [VersionStatus], counters: Counters, modelErrors: [String: String])>(([], Counters(), [:]))

    private let observer: (any InferenceObserver)?

    /// The inline budget `apus serve` uses unless told: 20 µs, enough for the batch of a linear
    /// model or a small tree ensemble, short enough that a loop is not kept from its sockets.
    /// On a single usable core a hand-off buys no parallelism (the worker runs on the loop's core
    /// anyway), only two context switches per batch: there the budget is 1 ms, so only batches
    /// long enough to hold up other connections' I/O go to the pool (a 32-row `rf_binary`
    /// batch, ~60 µs, cost 1.2 µs more CPU per request through the pool than inline).
    public static func defaultInlineBudgetMicroseconds(usableCores: Int) -> Int {
        usableCores <= 1 ? 1000 : 20
    }

    /// `inlineBudgetMicroseconds`: the estimated compute an event loop may spend running the
    /// batches it releases itself instead of handing them to the worker pool (0: always the
    /// pool); see `DynamicBatcher`.
    public convenience init(root: String, workers: Int, inlineBudgetMicroseconds: Int = 0, logger: Logger, observer: (any InferenceObserver)? = nil) {
        self.init(root: root, workers: workers, inlineBudgetMicroseconds: inlineBudgetMicroseconds, logger: logger, observer: observer,
                  loadBundle: { try BundleLoader.load(directory: $0, model: $1, version: $2) })
    }

    /// `loadBundle` replaces `BundleLoader.load` (tests: a version renamed away mid-scan).
    init(root: String, workers: Int, inlineBudgetMicroseconds: Int = 0, logger: Logger, observer: (any InferenceObserver)? = nil,
         loadBundle: @escaping @Sendable (_ directory: String, _ model: String, _ version: Int) throws -> BundleLoader.Loaded) {
        self.observer = observer
        self.root = root
        self.workers = max(1, workers)
        self.inlineBudgetNanos = UInt64(max(0, inlineBudgetMicroseconds)) * 1000
        self.logger = logger
        self.loadBundle = loadBundle
    }

    /// The published snapshot, and the last model entry looked up in it.
    private struct Current {
        var snapshot = RepositorySnapshot()
        /// Requests come in runs for one model: comparing its name with the last one looked up
        /// is cheaper than hashing it (a String-keyed lookup was ~300 instructions per request).
        /// Cleared with every new snapshot.
        var lastLookup: (name: String, entry: RepositorySnapshot.Model)?
    }

    /// What serves now. Immutable; hold it for the duration of one request.
    public var snapshot: RepositorySnapshot { current.withLock { $0.snapshot } }

    /// The current snapshot's entry for `model` (nil: not in the repository); what
    /// `snapshot.models[model]` answers, without copying the snapshot or, for the same model as
    /// the last call, hashing the name.
    public func entry(for model: String) -> RepositorySnapshot.Model? {
        current.withLock { current in
            if let last = current.lastLookup, last.name == model { return last.entry }
            guard let entry = current.snapshot.models[model] else { return nil }
            current.lastLookup = (model, entry)
            return entry
        }
    }

    /// Every known version's state, sorted by model then version.
    public var statuses: [VersionStatus] { published.withLock { $0.statuses } }
    public var counters: Counters { published.withLock { $0.counters } }
    /// Model-level problems (unreadable model.json), by model.
    public var modelErrors: [String: String] { published.withLock { $0.modelErrors } }

    /// Scans the disk, loads what is new or changed, retires what left, publishes the result.
    /// Returns the new generation.
    @discardableResult
    public func reload() -> Int {
        state.withLock { state in
            state.counters.reloads += 1
            let onDisk = Self.listModels(root: root)
            for model in Set(state.entries.keys).subtracting(onDisk) {
                retireAll(model: model, state: &state)
                state.entries[model] = nil
                state.settings[model] = nil
            }
            for model in onDisk.sorted() where !state.unloadedModels.contains(model) {
                scan(model: model, state: &state)
            }
            sweep(state: &state)
            return publish(state: &state)
        }
    }

    /// Frees draining versions whose in-flight requests finished. Cheap; the poller calls it on
    /// every tick.
    public func sweep() {
        state.withLock { state in
            let before = state.draining.count
            sweep(state: &state)
            if state.draining.count != before { _ = publish(state: &state) }
        }
    }

    /// Admin unload: the model stops serving (in-flight requests finish) until `load`.
    public func unload(model: String) throws {
        try state.withLock { state in
            guard state.entries[model] != nil else { throw ApusError(.notFound, "model \(model) is not in the repository") }
            state.unloadedModels.insert(model)
            retireAll(model: model, state: &state)
            state.entries[model] = nil
            sweep(state: &state)
            _ = publish(state: &state)
        }
        logger.info("model unloaded", metadata: ["model": "\(model)"])
    }

    /// Admin load: (re)loads the model from disk now.
    public func load(model: String) throws {
        guard Self.listModels(root: root).contains(model) else {
            throw ApusError(.notFound, "model \(model) has no folder in \(root)")
        }
        _ = state.withLock { $0.unloadedModels.remove(model) }
        reload()
        if let status = statuses.first(where: { $0.model == model && $0.state != .ready }), case .failed(let reason) = status.state,
           snapshot.models[model]?.versions.isEmpty ?? true {
            throw ApusError(.unavailable, "model \(model) failed to load: \(reason)")
        }
    }

    /// Points `label` at `version` (which must be ready), persisting it to model.json first: the
    /// move happens only if the file was written (a full disk leaves everything as it was).
    public func setLabel(model: String, label: String, version: Int?) throws {
        guard Self.isValidLabelName(label) else {
            throw ApusError(.badRequest, "label name \"\(label.prefix(80))\" must be 1 to 64 letters, digits, '.', '_' or '-', start with a letter or digit, and not be only digits")
        }
        try updateSettings(model: model) { settings, entries in
            if let version {
                guard entries[version]?.lifecycle.state == .ready else {
                    throw ApusError(.badRequest, "label \(label): version \(version) of \(model) is not ready")
                }
            }
            var labels = settings.labels ?? [:]
            labels[label] = version
            settings.labels = labels
        }
        logger.info("label moved", metadata: ["model": "\(model)", "label": "\(label)", "version": "\(version.map(String.init) ?? "none")"])
    }

    /// A label name the admin API accepts. It lands in model.json and in URLs, so it is a short
    /// identifier; and not only digits, which would read as a version number wherever a version
    /// or a label is given (`apus predict --version 3`).
    static func isValidLabelName(_ label: String) -> Bool {
        let bytes = Array(label.utf8)
        guard (1...64).contains(bytes.count), let first = bytes.first else { return false }
        func isAlphanumeric(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        }
        return isAlphanumeric(first)
            && bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
            && !bytes.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Replaces the model's A/B split (validated by the caller), persisted like labels.
    public func setSplit(model: String, split: ModelSettings.Split?) throws {
        try updateSettings(model: model) { settings, _ in settings.split = split }
        logger.info("split changed", metadata: ["model": "\(model)"])
    }

    /// Applies `change` to a copy of the settings, writes model.json, and only then publishes.
    private func updateSettings(model: String, _ change: (inout ModelSettings, [Int: Entry]) throws -> Void) throws {
        try state.withLock { state in
            guard let entries = state.entries[model] else { throw ApusError(.notFound, "model \(model) is not in the repository") }
            var settings = state.settings[model] ?? ModelSettings()
            try change(&settings, entries)
            try ModelSettings.write(settings, to: root + "/" + model + "/" + ModelSettings.fileName)
            state.settings[model] = settings
            _ = publish(state: &state)
        }
    }

    // MARK: - Scanning

    static func listModels(root: String) -> Set<String> {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return Set(names.filter { !$0.hasPrefix(".") && isDirectory(root + "/" + $0) })
    }

    static func listVersions(directory: String) -> [Int] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.compactMap { name in
            guard let v = Int(name), v >= 0, String(v) == name else { return nil }
            return isDirectory(directory + "/" + name) ? v : nil
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private func scan(model: String, state: inout State) {
        let directory = root + "/" + model
        do {
            state.settings[model] = try ModelSettings.read(path: directory + "/" + ModelSettings.fileName)
            state.modelErrors[model] = nil
        } catch {
            // Keep serving with the settings we had; report the problem.
            let message = (error as? ApusError)?.message ?? "\(error)"
            if state.modelErrors[model] != message {
                logger.error("model settings unreadable", metadata: ["model": "\(model)", "error": "\(message)"])
            }
            state.modelErrors[model] = message
        }
        let settings = state.settings[model] ?? ModelSettings()
        let policy = settings.versionPolicy ?? .latest(1)
        // "latest N" counts versions that load: a newer version that fails (corrupt, half
        // copied) must not push out the one serving, so older versions are kept (or loaded)
        // until N are ready. Newest first.
        let onDisk = Self.listVersions(directory: directory)
        let candidates: [Int]
        let readyTarget: Int?
        if case .latest(let n) = policy {
            candidates = onDisk.sorted(by: >)
            readyTarget = max(n, 0)
        } else {
            candidates = policy.select(onDisk).sorted(by: >)
            readyTarget = nil
        }
        var entries = state.entries[model] ?? [:]
        var kept: Set<Int> = []
        var readyCount = 0
        for version in candidates {
            if let readyTarget, readyCount >= readyTarget { break }
            kept.insert(version)
            let versionDirectory = directory + "/" + String(version)
            let fingerprint = BundleLoader.fingerprint(directory: versionDirectory)
            if let existing = entries[version], existing.fingerprint == fingerprint {
                if existing.lifecycle.state == .ready { readyCount += 1 }
                continue
            }
            do {
                let loaded = try loadBundle(versionDirectory, model, version)
                let served = ServedVersion(model: model, version: version, loaded: loaded, directory: versionDirectory,
                                           fingerprint: fingerprint, batching: settings.batching, workers: workers,
                                           inlineBudgetNanos: inlineBudgetNanos, observer: observer)
                var entry = Entry(fingerprint: fingerprint)
                _ = entry.lifecycle.loaded()
                entry.served = served
                if var old = entries[version] { retire(&old, state: &state) }
                entries[version] = entry
                readyCount += 1
                state.counters.loads += 1
                logger.info("version ready", metadata: ["model": "\(model)", "version": "\(version)"])
            } catch {
                // Renamed away between the listing and the load (a deploy unpublishing it, as
                // the model-sync tool does): a removal, not a failure. It leaves with the others
                // that are gone below.
                guard Self.isDirectory(versionDirectory) else {
                    kept.remove(version)
                    continue
                }
                let reason = (error as? ApusError)?.message ?? "\(error)"
                state.counters.failures += 1
                logger.error("version failed to load", metadata: ["model": "\(model)", "version": "\(version)", "reason": "\(reason)"])
                if var old = entries[version], old.lifecycle.state == .ready {
                    // The serving copy stays; remember the failure so the index shows it and the
                    // same broken files are not retried every poll.
                    old.fingerprint = fingerprint
                    old.lastFailure = reason
                    entries[version] = old
                    readyCount += 1
                } else {
                    var entry = Entry(fingerprint: fingerprint)
                    _ = entry.lifecycle.failed(reason)
                    entries[version] = entry
                }
            }
        }
        for (version, entry) in entries where !kept.contains(version) {
            var entry = entry
            retire(&entry, state: &state)
            entries[version] = nil
        }
        state.entries[model] = entries
    }

    private func retireAll(model: String, state: inout State) {
        for (_, entry) in state.entries[model] ?? [:] {
            var entry = entry
            retire(&entry, state: &state)
        }
    }

    private func retire(_ entry: inout Entry, state: inout State) {
        let inflight = entry.served?.inflightRequests ?? 0
        switch entry.lifecycle.retire(inflight: inflight) {
        case .stopServing:
            if let served = entry.served { state.draining.append(served) }
        case .free:
            if entry.served != nil { state.counters.unloads += 1 }
        default:
            break
        }
        entry.served = nil
    }

    private func sweep(state: inout State) {
        let before = state.draining.count
        state.draining.removeAll { $0.inflightRequests == 0 }
        state.counters.unloads += before - state.draining.count
    }

    private func publish(state: inout State) -> Int {
        state.generation += 1
        var models: [String: RepositorySnapshot.Model] = [:]
        var statuses: [VersionStatus] = []
        for (model, entries) in state.entries {
            var ready: [Int: ServedVersion] = [:]
            for (version, entry) in entries {
                if entry.lifecycle.state == .ready, let served = entry.served { ready[version] = served }
                var status = VersionStatus(model: model, version: version, state: entry.lifecycle.state)
                status.lastFailure = entry.lastFailure
                statuses.append(status)
            }
            let settings = state.settings[model] ?? ModelSettings()
            models[model] = RepositorySnapshot.Model(name: model, versions: ready, labels: settings.labels ?? [:], settings: settings)
        }
        for served in state.draining {
            statuses.append(VersionStatus(model: served.model, version: served.version, state: .draining))
        }
        statuses.sort { ($0.model, $0.version, $0.state.name) < ($1.model, $1.version, $1.state.name) }
        // Versions gone since the last publish: the observer drops their series (off this lock).
        var known: Set<VersionID> = []
        for status in statuses { known.insert(VersionID(model: status.model, version: status.version)) }
        let gone = state.known.subtracting(known)
        state.known = known
        if let observer, !gone.isEmpty {
            DispatchQueue.global(qos: .utility).async {
                for id in gone { observer.versionRetired(model: id.model, version: id.version) }
            }
        }
        let snapshot = RepositorySnapshot(models: models, generation: state.generation)
        current.withLock { $0 = Current(snapshot: snapshot) }
        let counters = state.counters
        let errors = state.modelErrors
        published.withLock { $0 = (statuses, counters, errors) }
        return state.generation
    }
}

/// A model version's identity, for set arithmetic over the repository's contents.
struct VersionID: Hashable, Sendable {
    var model: String
    var version: Int
}
