import DeciModels
import DeciWeights
import Foundation

/// A summary of a checkpoint folder read from its JSON files and safetensors headers only (nothing
/// is loaded): what `decidiffusion inspect` prints.
public struct CheckpointSummary: Sendable {
    public struct Component: Sendable {
        public var folder: String
        public var className: String
        /// Weight files found, or why none could be used.
        public var weights: String
        public var parameters: Int
        /// Element counts per stored dtype (e.g. F16: 123 060 480).
        public var dtypes: [String: Int]
        public var role: String
    }

    public var root: String
    public var pipelineClass: String
    public var denoiser: String
    public var components: [Component]
    public var skipped: [String]

    public var totalParameters: Int { components.filter { $0.role != "skipped" && $0.role != "unused" }.reduce(0) { $0 + $1.parameters } }

    public init(layout: CheckpointLayout, variant: String? = nil) {
        root = layout.root.path
        pipelineClass = layout.index?.className ?? "(no model_index.json)"
        denoiser = layout.denoiser.rawValue
        skipped = layout.skipped
        var comps: [Component] = []
        let fm = FileManager.default
        let folders = (try? fm.contentsOfDirectory(atPath: layout.root.path))?.sorted() ?? []
        for name in folders {
            var isDir: ObjCBool = false
            let path = layout.root.appendingPathComponent(name).path
            guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue, !name.hasPrefix(".") else { continue }
            var className = "?"
            if let entry = layout.index?.components[name], let pair = entry { className = pair.className }
            let role: String
            switch name {
            case layout.denoiser.rawValue: role = "denoiser"
            case "text_encoder", "vae", "tokenizer", "scheduler": role = "used"
            default: role = layout.skipped.contains(name) ? "skipped" : "unused"
            }
            var comp = Component(folder: name, className: className, weights: "-", parameters: 0, dtypes: [:], role: role)
            if name != "tokenizer" && name != "scheduler" && name != "feature_extractor" {
                do {
                    let located = try ComponentWeights.locate(in: path, variant: variant)
                    let store = try WeightStore.openComponent(path, variant: variant)
                    comp.weights = store.files.map { URL(fileURLWithPath: $0.path).lastPathComponent }.joined(separator: ", ")
                    for key in store.keys {
                        guard let t = store.peek(key) else { continue }
                        comp.parameters += t.elementCount
                        comp.dtypes["\(t.dtype)", default: 0] += t.elementCount
                    }
                    if !located.notes.isEmpty { comp.weights += " (" + located.notes.joined(separator: "; ") + ")" }
                } catch {
                    comp.weights = "\(error)"
                }
            }
            comps.append(comp)
        }
        components = comps
    }

    /// Human-readable table.
    public var text: String {
        var lines = ["checkpoint: \(root)", "pipeline:   \(pipelineClass)", "denoiser:   \(denoiser)/"]
        for c in components {
            let dt = c.dtypes.sorted { $0.key < $1.key }.map { "\($0.key)" }.joined(separator: "+")
            let params = c.parameters > 0 ? Self.grouped(c.parameters) + " params" : ""
            lines.append("  \(c.folder.padding(toLength: 18, withPad: " ", startingAt: 0)) \(c.className.padding(toLength: 34, withPad: " ", startingAt: 0)) \(c.role.padding(toLength: 9, withPad: " ", startingAt: 0)) \(params) \(dt.isEmpty ? "" : "[\(dt)]")")
            if c.weights != "-" { lines.append("      weights: \(c.weights)") }
        }
        if !skipped.isEmpty { lines.append("not run by this engine: \(skipped.joined(separator: ", "))") }
        lines.append("parameters used for generation: \(Self.grouped(totalParameters))")
        return lines.joined(separator: "\n")
    }

    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }
}

extension DiffusionPipeline {
    /// diffusers' `enable_vae_tiling` settings for this checkpoint's VAE.
    public var defaultVAETiling: VAETiling { VAETiling(config: vae.config) }
}
