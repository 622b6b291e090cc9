// LoRA modules resolved against a component's own checkpoint keys (the model's module paths, so
// names with underscores such as `modules_list` never need splitting) and merged into its weights
// as the layers are built: W += multiplier * alpha / rank * reshape(up_2d @ down_2d), in float32,
// before the layer packs W in the compute precision. Matches PEFT's merge (`get_delta_weight`).
import DeciTensor
import DeciWeights
import Foundation

/// The two parts of a pipeline a LoRA updates.
public enum LoRAComponent: String, Sendable, CaseIterable {
    case textEncoder = "text_encoder"
    case denoiser = "unet"

    /// Module name prefixes: kohya's flattened path and diffusers' / PEFT's dotted path.
    var prefixes: (kohya: String, diffusers: String) {
        switch self {
        case .textEncoder: ("lora_te_", "text_encoder.")
        case .denoiser: ("lora_unet_", "unet.")
        }
    }

    /// Whether a module name addresses this component.
    func owns(_ name: String) -> Bool { name.hasPrefix(prefixes.kohya) || name.hasPrefix(prefixes.diffusers) }
}

/// One loaded LoRA file and its strength per component (A1111's `te` and `unet` multipliers).
public struct LoRAApplication: Sendable {
    public let file: LoRAFile
    public var textEncoderMultiplier: Float
    public var denoiserMultiplier: Float

    public init(file: LoRAFile, textEncoderMultiplier: Float = 1, denoiserMultiplier: Float? = nil) {
        self.file = file
        self.textEncoderMultiplier = textEncoderMultiplier
        self.denoiserMultiplier = denoiserMultiplier ?? textEncoderMultiplier
    }

    func multiplier(_ c: LoRAComponent) -> Float { c == .textEncoder ? textEncoderMultiplier : denoiserMultiplier }
}

/// The LoRA deltas of one component, set as its weight store's ``WeightStore/adjustments``: merged
/// as the layers load, and replaceable later (``replace(with:)``) from the layers themselves.
public final class LoRAMerge: WeightAdjustments, @unchecked Sendable {
    struct Contribution {
        let module: LoRAModule
        let multiplier: Float
        let file: String
    }

    public let component: LoRAComponent
    /// Keep the weights as they were before a merge, so ``replace(with:)`` can restore them.
    public let keepsOriginals: Bool
    /// LoRA module name -> checkpoint weight key, for every weight of the component.
    let names: [String: String]
    let ambiguous: Set<String>
    /// Weight key -> shape.
    let shapes: [String: [Int]]
    private let lock = NSLock()
    /// Target checkpoint key -> the updates merged into it.
    private var targets: [String: [Contribution]]
    private var unmatchedModules: [String]
    private var applied = Set<String>()
    /// The layers built from each weight key, and which of their values it fills.
    private var layers: [String: (layer: any RewritableWeights, values: Range<Int>)] = [:]
    /// The values of merged keys before their deltas (with `keepsOriginals`, or read back).
    private var originals: [String: [Float]] = [:]

    /// Resolves every module of `loras` that addresses `component` against the weight keys of
    /// `store` (the component's checkpoint): kohya `lora_unet_` / `lora_te_` + the path with dots
    /// as underscores, diffusers `unet.` / `text_encoder.` + the path. A module whose factors do
    /// not make its target's shape counts as unmatched.
    public init(_ loras: [LoRAApplication], component: LoRAComponent, store: WeightStore, keepsOriginals: Bool = false) {
        self.component = component
        self.keepsOriginals = keepsOriginals
        var names: [String: String] = [:], ambiguous = Set<String>(), shapes: [String: [Int]] = [:]
        for key in store.keys where key.hasSuffix(".weight") {
            guard let shape = store.peek(key)?.shape, shape.count == 2 || shape.count == 4 else { continue }
            shapes[key] = shape
            var path = String(key.dropLast(".weight".count))
            // Text-encoder LoRAs name transformers 4's `text_model.` level, which newer files lack.
            if component == .textEncoder && !path.hasPrefix("text_model.") { path = "text_model." + path }
            let kohya = component.prefixes.kohya + path.replacingOccurrences(of: ".", with: "_")
            if names[kohya] != nil { ambiguous.insert(kohya) }
            names[kohya] = key
            names[component.prefixes.diffusers + path] = key
        }
        (self.names, self.ambiguous, self.shapes) = (names, ambiguous, shapes)
        (targets, unmatchedModules) = ([:], [])
        (targets, unmatchedModules) = resolve(loras)
    }

    /// Module names (with their file) that addressed this component but match none of its weights.
    public var unmatched: [String] { lock.withLock { unmatchedModules } }

    /// The modules of `loras` that would match none of this component's weights.
    public func unmatched(in loras: [LoRAApplication]) -> [String] { resolve(loras).unmatched }

    /// Checkpoint keys this merge changes.
    public var targetKeys: [String] { lock.withLock { targets.keys.sorted() } }

    func resolve(_ loras: [LoRAApplication]) -> (targets: [String: [Contribution]], unmatched: [String]) {
        var targets: [String: [Contribution]] = [:], unmatched: [String] = []
        for lora in loras {
            for module in lora.file.modules where component.owns(module.name) {
                guard let key = names[module.name], !ambiguous.contains(module.name), let shape = shapes[key] else {
                    unmatched.append("\(lora.file.path): \(module.name)")
                    continue
                }
                let outer = shape[0], inner = shape.reduce(1, *) / max(outer, 1)
                guard module.up.shape[0] == outer, module.down.elementCount / module.rank == inner else {
                    // A module of the same path but another shape: a LoRA for another model.
                    unmatched.append("\(lora.file.path): \(module.name) (up \(module.up.shape) @ down \(module.down.shape) does not make \(key) \(shape))")
                    continue
                }
                targets[key, default: []].append(Contribution(module: module, multiplier: lora.multiplier(component), file: lora.file.path))
            }
        }
        return (targets, unmatched)
    }

    public func adjust(_ key: String, shape: [Int], values: UnsafeMutableBufferPointer<Float>) throws(WeightsError) {
        guard let contributions = lock.withLock({ targets[key] }) else { return }
        if keepsOriginals { lock.withLock { originals[key] = Array(values) } }
        try Self.add(contributions, to: values, key: key)
        lock.withLock { _ = applied.insert(key) }
    }

    public func built(_ key: String, layer: AnyObject, values: Range<Int>) {
        guard let layer = layer as? any RewritableWeights else { return }
        lock.withLock { layers[key] = (layer, values) }
    }

    /// `values += multiplier * alpha / rank * delta` for each contribution.
    static func add(_ contributions: [Contribution], to values: UnsafeMutableBufferPointer<Float>, key: String) throws(WeightsError) {
        for c in contributions {
            let delta = try Self.delta(c.module, file: c.file)
            guard delta.count == values.count else {
                throw WeightsError(.adjustment, file: c.file, key: c.module.name, "its delta has \(delta.count) values for \(key)")
            }
            let s = c.multiplier * c.module.scale
            for i in 0..<values.count { values[i] += s * delta[i] }
        }
    }

    /// Replaces the merged LoRAs by `loras` in the loaded layers, without the checkpoint: each layer
    /// a LoRA touched gets its original values back (kept, or read back before its first merge)
    /// plus the new deltas. Returns the modules of `loras` that match nothing here.
    public func replace(with loras: [LoRAApplication]) throws(LoRAError) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let (next, unmatched) = resolve(loras)
        do {
            for key in Set(targets.keys).union(next.keys).sorted() {
                guard let (layer, range) = layers[key] else {
                    throw LoRAError("\(component.rawValue): \(key) is not a layer the engine merges into (linear and convolution weights)")
                }
                do {
                    var all = try layer.readWeights()
                    guard range.upperBound <= all.count else { throw LoRAError("\(key): the layer holds \(all.count) values, not \(range)") }
                    let original: [Float]
                    if let kept = originals[key] {
                        original = kept
                    } else if targets[key] == nil {
                        original = Array(all[range])  // never merged: the layer holds the base weights
                    } else {
                        throw LoRAError("\(component.rawValue): \(key) was merged at load without keeping its original weights; load with keepsOriginals to change LoRAs")
                    }
                    var values = original
                    if let contributions = next[key] {
                        try values.withUnsafeMutableBufferPointer { b in try Self.add(contributions, to: b, key: key) }
                        originals[key] = original
                    } else {
                        originals[key] = nil
                    }
                    all.replaceSubrange(range, with: values)
                    try layer.writeWeights(all)
                } catch let e as LoRAError {
                    throw e
                } catch {
                    throw LoRAError("\(component.rawValue): \(key): cannot rewrite the layer: \(error)")
                }
            }
            (targets, unmatchedModules, applied) = (next, unmatched, Set(next.keys))
            return unmatched
        }
    }

    /// `up_2d @ down_2d` (`[out, in * kh * kw]`, float32) through the op layer's matmul.
    static func delta(_ m: LoRAModule, file: String) throws(WeightsError) -> [Float] {
        let r = m.rank, out = m.up.shape[0], inner = m.down.elementCount / r
        do {
            let up = try m.up.floats(), down = try m.down.floats()
            // Linear computes x W^T: with W = down^T ([inner, r]) and x = up ([out, r]) that is up @ down.
            var downT = [Float](repeating: 0, count: down.count)
            for i in 0..<r { for j in 0..<inner { downT[j * r + i] = down[i * inner + j] } }
            let product = try Linear(inFeatures: r, outFeatures: inner, weight: downT, bias: nil, precision: .f32)
            return product(Tensor(shape: [out, r], data: up)).toArray()
        } catch let e as WeightsError {
            throw e
        } catch {
            throw WeightsError(.adjustment, file: file, key: m.name, "cannot compute up @ down: \(error)")
        }
    }

    /// Throws listing the targets the model did not build through the merging layer builders
    /// (nothing would have been merged into them).
    public func finish() throws(LoRAError) {
        let missed = lock.withLock { targets.keys.filter { !applied.contains($0) }.sorted() }
        guard missed.isEmpty else {
            throw LoRAError("LoRA targets \(missed.joined(separator: ", ")) are not layers the engine merges into (linear and convolution weights)")
        }
    }
}
