import Foundation

/// The tensors of one model component (one file, several files, or a sharded checkpoint), looked
/// up by checkpoint key while loading code walks its modules.
///
/// Loading code asks for each parameter with ``take(_:shape:)``, which checks the shape and records
/// the key as consumed; ``finish(prefix:allowUnused:)`` then fails listing every tensor nothing
/// asked for, so weights can never silently stay uninitialised nor checkpoint tensors silently be ignored.
/// ``scoped(_:renames:)`` gives module code a view under a key prefix, optionally with
/// ``KeyRename`` rules for older checkpoints. ``recording(name:)`` makes an empty store that records
/// the keys and shapes a model declares instead, to list its checkpoint without one.
///
/// Thread safety: lookups are safe from any thread; the consumed-key record is guarded by a lock,
/// so modules may load concurrently. Files stay mapped while the store or any tensor view is alive.
///
/// ```swift
/// let store = try WeightStore.openComponent("DeciDiffusion-v1-0/vae", variant: "fp16")
/// let vae = store.scoped("", renames: KeyRename.vaeLegacyAttention)
/// let norm = vae.scoped("decoder.mid_block.resnets.0.norm1.")
/// let gamma = try norm.take("weight", shape: [512])      // checks the shape, records the key
/// try gamma.convertFloats(into: alignedBuffer)           // f16/bf16/f32 -> f32, no extra copy
/// ...
/// let ignored = try store.finish()   // throws listing unused tensors; returns harmless ones
/// ```
public final class WeightStore: @unchecked Sendable {
    /// Names the store in errors: the file, the index file, or the files joined.
    public let name: String
    /// The open files, each once.
    public let files: [SafeTensorsFile]
    /// `metadata` of a sharded checkpoint's index (non-string values as compact JSON), or the single
    /// file's `__metadata__`.
    public let metadata: [String: String]

    private let locations: [String: WeightTensor]
    /// Every key, sorted.
    public let keys: [String]
    private let lock = NSLock()
    private var consumed = Set<String>()
    /// Set on a recording store (``recording(name:)``), which has no files.
    let recorder: ShapeRecorder?
    /// Merged into weights by the layer builders as they convert them (LoRA); set before building.
    public var adjustments: (any WeightAdjustments)?

    /// A store over one or more safetensors files; a key present in two files is an error.
    public init(files: [SafeTensorsFile], name: String? = nil) throws(WeightsError) {
        self.files = files
        self.name = name ?? files.map(\.path).joined(separator: ", ")
        var locations: [String: WeightTensor] = [:]
        for file in files {
            for tensor in file.tensors {
                if let other = locations[tensor.name] {
                    throw WeightsError(.duplicateKey, file: file.path, key: tensor.name,
                                       "also present in \(other.file.path); a store's files must not share keys")
                }
                locations[tensor.name] = tensor
            }
        }
        self.locations = locations
        self.keys = locations.keys.sorted()
        self.metadata = files.count == 1 ? files[0].metadata ?? [:] : [:]
        self.recorder = nil
    }

    init(name: String, files: [SafeTensorsFile], locations: [String: WeightTensor], metadata: [String: String],
         recorder: ShapeRecorder? = nil) {
        self.name = name
        self.files = files
        self.locations = locations
        self.keys = locations.keys.sorted()
        self.metadata = metadata
        self.recorder = recorder
    }

    /// Opens the safetensors files at `paths` as one store.
    public convenience init(paths: [String]) throws(WeightsError) {
        var files: [SafeTensorsFile] = []
        for p in paths { files.append(try SafeTensorsFile(path: p)) }
        try self.init(files: files)
    }

    /// Opens a single `.safetensors` file, or a sharded checkpoint when `path` ends in `.json`.
    public static func open(_ path: String) throws(WeightsError) -> WeightStore {
        if path.hasSuffix(".json") { return try openSharded(indexPath: path) }
        return try WeightStore(files: [SafeTensorsFile(path: path)])
    }

    /// Opens a sharded checkpoint from its `*.safetensors.index.json`: `weight_map` maps each key to
    /// a shard file in the index's folder; each shard is opened once. A missing shard, or a key
    /// mapped to a shard that lacks it, is an error naming both. Tensors a shard holds beyond the
    /// index are kept (``finish(prefix:allowUnused:)`` reports them if unused).
    public static func openSharded(indexPath: String) throws(WeightsError) -> WeightStore {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: indexPath))
        } catch {
            throw WeightsError(.io, file: indexPath, "cannot read index: \(error.localizedDescription)")
        }
        let parsed: Result<JSONValue, WeightsError> = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard isValidUTF8(raw) else { return .failure(WeightsError(.invalidIndex, file: indexPath, "index is not valid UTF-8")) }
            do throws(JSONParseError) {
                return .success(try parseJSON(raw))
            } catch {
                return .failure(WeightsError(.invalidIndex, file: indexPath, "index is not valid JSON at byte \(error.offset): \(error.message)"))
            }
        }
        let json = try parsed.get()
        guard case .object(let top) = json else {
            throw WeightsError(.invalidIndex, file: indexPath, "index is a JSON \(json.typeName), not an object")
        }
        guard let mapValue = top.first(where: { $0.key == "weight_map" })?.value, case .object(let mapMembers) = mapValue else {
            throw WeightsError(.invalidIndex, file: indexPath, "index has no 'weight_map' object")
        }
        var metadata: [String: String] = [:]
        if let metaValue = top.first(where: { $0.key == "metadata" })?.value {
            guard case .object(let metaMembers) = metaValue else {
                throw WeightsError(.invalidIndex, file: indexPath, "'metadata' is a JSON \(metaValue.typeName), not an object")
            }
            for m in metaMembers {
                if case .string(let s) = m.value { metadata[m.key] = s } else { metadata[m.key] = m.value.compactText }
            }
        }
        let folder = URL(fileURLWithPath: indexPath).deletingLastPathComponent()
        var shardOrder: [String] = []
        var keysByShard: [String: [String]] = [:]
        for m in mapMembers {
            guard case .string(let shard) = m.value else {
                throw WeightsError(.invalidIndex, file: indexPath, key: m.key, "weight_map value is a JSON \(m.value.typeName), not a file name")
            }
            let parts = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard !shard.isEmpty, !shard.hasPrefix("/"), !parts.contains(".."), !parts.contains("") else {
                throw WeightsError(.invalidIndex, file: indexPath, key: m.key,
                                   "weight_map names shard \"\(shard)\", which is not a file inside the index's folder")
            }
            if keysByShard[shard] == nil { shardOrder.append(shard) }
            keysByShard[shard, default: []].append(m.key)
        }
        var files: [SafeTensorsFile] = []
        var fileByShard: [String: SafeTensorsFile] = [:]
        for shard in shardOrder {
            let shardPath = folder.appendingPathComponent(shard).path
            let someKey = keysByShard[shard]?.first ?? ""
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw WeightsError(.missingShard, file: indexPath, key: someKey,
                                   "mapped to shard \(shardPath), which does not exist (\(keysByShard[shard]?.count ?? 0) keys map to it)")
            }
            let file = try SafeTensorsFile(path: shardPath)
            files.append(file)
            fileByShard[shard] = file
        }
        var locations: [String: WeightTensor] = [:]
        for m in mapMembers {
            guard case .string(let shard) = m.value, let file = fileByShard[shard] else { continue }
            guard let info = file.infos[m.key] else {
                throw WeightsError(.shardLacksKey, file: indexPath, key: m.key,
                                   "the index maps it to shard \(file.path), which does not contain it")
            }
            locations[m.key] = WeightTensor(name: m.key, info: info, file: file)
        }
        // Tensors a shard has beyond the index: kept, unless two shards disagree.
        var extraOwner: [String: String] = [:]
        for file in files {
            for key in file.keys where locations[key]?.file !== file {
                if locations[key] != nil, extraOwner[key] == nil { continue }  // the index chose another shard
                if let owner = extraOwner[key] {
                    throw WeightsError(.duplicateKey, file: file.path, key: key,
                                       "also present in \(owner) and the index \(indexPath) does not say which to use")
                }
                extraOwner[key] = file.path
                if let info = file.infos[key] { locations[key] = WeightTensor(name: key, info: info, file: file) }
            }
        }
        return WeightStore(name: indexPath, files: files, locations: locations, metadata: metadata)
    }

    // MARK: Lookup

    /// Whether the store holds `key` (no renames applied).
    public func contains(_ key: String) -> Bool { locations[key] != nil }

    /// The tensor under `key` without marking it consumed, or nil.
    public func peek(_ key: String) -> WeightTensor? { locations[key] }

    /// The tensor under `key`, marked consumed; a missing key is an error suggesting close keys.
    public func tensor(_ key: String) throws(WeightsError) -> WeightTensor {
        try resolve(key, renames: [], scopePrefix: "", shape: nil)
    }

    /// The tensor under `key` after checking that its shape is `shape`; marked consumed only when
    /// the shape matches.
    public func take(_ key: String, shape: [Int]) throws(WeightsError) -> WeightTensor {
        try resolve(key, renames: [], scopePrefix: "", shape: shape)
    }

    /// A view of the keys under `prefix` (include the trailing dot: `"text_model."`), with optional
    /// renames for legacy checkpoints.
    public func scoped(_ prefix: String, renames: [KeyRename] = []) -> WeightScope {
        WeightScope(store: self, prefix: prefix, renames: renames)
    }

    /// Marks keys as deliberately unused (e.g. a component the engine skips) so
    /// ``finish(prefix:allowUnused:)`` accepts them; keys not in the store are ignored.
    public func markConsumed<S: Sequence>(_ keys: S) where S.Element == String {
        lock.lock()
        defer { lock.unlock() }
        for k in keys where locations[k] != nil { consumed.insert(k) }
    }

    /// Keys consumed so far.
    public func consumedKeys() -> Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return consumed
    }

    /// Keys under `prefix` nothing has consumed, sorted.
    public func unusedKeys(prefix: String = "") -> [String] {
        let used = consumedKeys()
        return keys.filter { $0.hasPrefix(prefix) && !used.contains($0) }
    }

    /// Keys that are buffers rather than parameters and harmless to leave unused: `position_ids`
    /// (transformers' CLIP), BatchNorm's `num_batches_tracked`.
    public static func isHarmlessBuffer(_ key: String) -> Bool {
        key.hasSuffix("position_ids") || key.hasSuffix("num_batches_tracked")
    }

    /// Ends loading: throws `.unusedTensors` listing every unused key under `prefix` that
    /// `allowUnused` does not accept, and returns the accepted unused keys (for a warning).
    @discardableResult
    public func finish(prefix: String = "", allowUnused: (String) -> Bool = WeightStore.isHarmlessBuffer) throws(WeightsError) -> [String] {
        let unused = unusedKeys(prefix: prefix)
        let bad = unused.filter { !allowUnused($0) }
        if !bad.isEmpty {
            let shown = bad.prefix(40).joined(separator: ", ")
            let more = bad.count > 40 ? " and \(bad.count - 40) more" : ""
            throw WeightsError(.unusedTensors, file: name,
                               "\(bad.count) of \(keys.count) tensors were not used by the model: \(shown)\(more)")
        }
        return unused
    }

    /// Checks a whole expected layout at once, without consuming anything: throws one error listing
    /// every missing key, every mis-shaped tensor (both shapes) and, unless allowed, every tensor
    /// not in `expected`. Keys are full checkpoint keys.
    public func verify(expected: [String: [Int]], allowUnused: (String) -> Bool = WeightStore.isHarmlessBuffer) throws(WeightsError) {
        var problems: [String] = []
        for key in expected.keys.sorted() {
            guard let want = expected[key] else { continue }
            if let t = locations[key] {
                if t.shape != want { problems.append("'\(key)' has shape \(t.shape), expected \(want)") }
            } else {
                problems.append("'\(key)' is missing")
            }
        }
        for key in keys where expected[key] == nil && !allowUnused(key) {
            problems.append("'\(key)' is not expected")
        }
        if !problems.isEmpty {
            throw WeightsError(.shapeMismatch, file: name, "\(problems.count) problems: " + problems.joined(separator: "; "))
        }
    }

    // MARK: Internals shared with WeightScope

    func resolve(_ key: String, renames: [KeyRename], scopePrefix: String, shape expected: [Int]?) throws(WeightsError) -> WeightTensor {
        if recorder != nil {
            throw WeightsError(.missingTensor, file: name, key: key,
                               "a recording store holds no tensors; module code declares shapes to it with expect(_:shape:)")
        }
        var found = locations[key]
        if found == nil {
            for candidate in KeyRename.candidates(for: key, rules: renames) {
                if let t = locations[candidate] { found = t; break }
            }
        }
        guard let tensor = found else {
            throw WeightsError(.missingTensor, file: name, key: key, missingMessage(key, renames: renames, scopePrefix: scopePrefix))
        }
        if let expected, tensor.shape != expected {
            let via = tensor.name == key ? "" : " (found as '\(tensor.name)')"
            throw WeightsError(.shapeMismatch, file: name, key: key,
                               "checkpoint has \(tensor.dtype) \(tensor.shape)\(via) but the model expects \(expected)")
        }
        lock.lock()
        consumed.insert(tensor.name)
        lock.unlock()
        return tensor
    }

    private func missingMessage(_ key: String, renames: [KeyRename], scopePrefix: String) -> String {
        var msg = "not in the checkpoint (\(keys.count) tensors"
        if !scopePrefix.isEmpty {
            let n = keys.lazy.filter { $0.hasPrefix(scopePrefix) }.count
            msg += ", \(n) under '\(scopePrefix)'"
        }
        msg += ")"
        let tried = KeyRename.candidates(for: key, rules: renames)
        if !tried.isEmpty { msg += "; also tried " + tried.map { "'\($0)'" }.joined(separator: ", ") }
        let close = closeKeys(to: key)
        if !close.isEmpty { msg += "; similar keys: " + close.map { "'\($0)'" }.joined(separator: ", ") }
        return msg
    }

    /// Up to three keys resembling `key`: first those sharing its last two or more dot segments
    /// (the same parameter of another block or under another prefix), then small edit distance.
    func closeKeys(to key: String) -> [String] {
        let parts = key.split(separator: ".")
        var scored: [(suffix: Int, prefix: Int, key: String)] = []
        for k in keys {
            let kp = k.split(separator: ".")
            var s = 0
            while s < min(parts.count, kp.count), parts[parts.count - 1 - s] == kp[kp.count - 1 - s] { s += 1 }
            guard s >= 2 else { continue }
            let p = zip(key.utf8, k.utf8).prefix { $0 == $1 }.count
            scored.append((s, p, k))
        }
        if !scored.isEmpty {
            scored.sort { ($0.suffix, $0.prefix, $1.key) > ($1.suffix, $1.prefix, $0.key) }
            return scored.prefix(3).map(\.key)
        }
        let limit = max(2, key.count / 5)
        let a = Array(key.utf8)
        var near: [(Int, String)] = []
        for k in keys {
            let b = Array(k.utf8)
            guard abs(a.count - b.count) <= limit else { continue }
            let d = editDistance(a, b)
            if d <= limit { near.append((d, k)) }
        }
        near.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        return near.prefix(3).map(\.1)
    }
}

private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// A view of a ``WeightStore`` under a key prefix, so module code asks for `norm1.weight` rather than
/// `down_blocks.0.modules_list.1.norm1.weight`. Consumption is recorded in the shared store.
public struct WeightScope: Sendable {
    public let store: WeightStore
    /// Prepended to every key asked for.
    public let prefix: String
    /// Tried when a key is missing.
    public let renames: [KeyRename]

    init(store: WeightStore, prefix: String, renames: [KeyRename]) {
        self.store = store
        self.prefix = prefix
        self.renames = renames
    }

    /// A narrower scope (`prefix + sub`), keeping this scope's renames plus `renames`.
    public func scoped(_ sub: String, renames more: [KeyRename] = []) -> WeightScope {
        WeightScope(store: store, prefix: prefix + sub, renames: renames + more)
    }

    /// Whether `key` (relative to the scope) is present, directly or via a rename.
    public func contains(_ key: String) -> Bool {
        let full = prefix + key
        return store.contains(full) || KeyRename.candidates(for: full, rules: renames).contains(where: store.contains)
    }

    /// The tensor under `prefix + key`, marked consumed.
    public func tensor(_ key: String) throws(WeightsError) -> WeightTensor {
        try store.resolve(prefix + key, renames: renames, scopePrefix: prefix, shape: nil)
    }

    /// The tensor under `prefix + key` after checking its shape; marked consumed only when the
    /// shape matches.
    public func take(_ key: String, shape: [Int]) throws(WeightsError) -> WeightTensor {
        try store.resolve(prefix + key, renames: renames, scopePrefix: prefix, shape: shape)
    }

    /// Declares that the model uses `prefix + key` with `shape`: a recording store
    /// (``WeightStore/recording(name:)``) records it, any other store checks and consumes it as
    /// ``take(_:shape:)`` does.
    public func expect(_ key: String, shape: [Int]) throws(WeightsError) {
        if let recorder = store.recorder { recorder.append(prefix + key, shape) } else { _ = try take(key, shape: shape) }
    }

    /// Whether the store records shapes instead of holding tensors (see ``WeightStore/recording(name:)``).
    public var isRecording: Bool { store.isRecording }

    /// The tensor if present (for optional parameters such as a bias), marked consumed; nil if absent.
    public func takeIfPresent(_ key: String, shape: [Int]) throws(WeightsError) -> WeightTensor? {
        contains(key) ? try take(key, shape: shape) : nil
    }

    /// Keys under this scope, relative to it, sorted.
    public var keys: [String] {
        store.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// Full keys under this scope nothing has consumed.
    public func unusedKeys() -> [String] { store.unusedKeys(prefix: prefix) }

    /// ``WeightStore/finish(prefix:allowUnused:)`` limited to this scope.
    @discardableResult
    public func finish(allowUnused: (String) -> Bool = WeightStore.isHarmlessBuffer) throws(WeightsError) -> [String] {
        try store.finish(prefix: prefix, allowUnused: allowUnused)
    }
}
