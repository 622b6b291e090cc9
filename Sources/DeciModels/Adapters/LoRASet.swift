// The LoRAs a pipeline loads with: which files at which strengths, how strict to be about modules
// that match nothing, and the per-component merges handed to the weight stores.
import DeciWeights
import Foundation

/// LoRA files to merge into a pipeline's text encoder and denoiser at load.
public final class LoRASet: @unchecked Sendable {
    public let applications: [LoRAApplication]
    /// Unmatched or unsupported keys become warnings instead of errors (`--lora-lenient`).
    public let lenient: Bool
    /// A pipeline loaded with this set keeps the original values of the weights it merges into,
    /// so a running service can change LoRAs later (``LoRAMerge/replace(with:)``); costs their
    /// float32 size.
    public let keepsOriginals: Bool
    private let lock = NSLock()
    private var notes: [String] = []
    private var merges: [LoRAComponent: LoRAMerge] = [:]

    /// Fails (unless `lenient`) on keys that are no LoRA factors or that address neither the text
    /// encoder nor the denoiser, listing them.
    public init(_ applications: [LoRAApplication], lenient: Bool = false, keepsOriginals: Bool = false) throws(LoRAError) {
        self.applications = applications
        self.lenient = lenient
        self.keepsOriginals = keepsOriginals
        var stray: [String] = []
        for a in applications {
            stray += a.file.unsupportedKeys.map { "\(a.file.path): \($0) (not a LoRA factor this engine merges)" }
            stray += a.file.modules.filter { m in !LoRAComponent.allCases.contains { $0.owns(m.name) } }
                .map { "\(a.file.path): \($0.name) (neither lora_unet_/unet. nor lora_te_/text_encoder.)" }
        }
        try report(stray)
    }

    /// Warnings for what a lenient set skipped.
    public var warnings: [String] { lock.withLock { notes } }

    /// The merge a component was loaded with (nil before it loads).
    public func merge(_ component: LoRAComponent) -> LoRAMerge? { lock.withLock { merges[component] } }

    /// Records what a lenient set skipped, or throws listing it.
    public func report(_ problems: [String]) throws(LoRAError) {
        guard !problems.isEmpty else { return }
        if lenient {
            lock.withLock { notes += problems.map { "LoRA key ignored: \($0)" } }
        } else {
            throw LoRAError("LoRA keys that match no module of the model (--lora-lenient to ignore them):\n  " + problems.joined(separator: "\n  "))
        }
    }

    /// The merge for one component's store, resolved against its keys; throws (unless lenient)
    /// listing modules that match none of its weights.
    func merge(for component: LoRAComponent, store: WeightStore) throws(ModelError) -> LoRAMerge {
        let merge = LoRAMerge(applications, component: component, store: store, keepsOriginals: keepsOriginals)
        do { try report(merge.unmatched) } catch { throw .config(error.description) }
        lock.withLock { merges[component] = merge }
        return merge
    }
}
