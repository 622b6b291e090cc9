import Foundation

/// A problem with the model folder itself: where it is, what it contains.
public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// `model_index.json` of a diffusers pipeline folder: the pipeline class and, per component
/// folder, its `[library, class]` (null for components the checkpoint leaves out).
public struct ModelIndex: Sendable {
    public var className: String
    public var diffusersVersion: String?
    /// Component folder name -> (library, class); nil entries are declared but absent.
    public var components: [String: (library: String, className: String)?]

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw CheckpointError("\(url.path): cannot read (\(error.localizedDescription))") }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CheckpointError("\(url.path): not a JSON object")
        }
        guard let cls = obj["_class_name"] as? String else { throw CheckpointError("\(url.path): missing \"_class_name\"") }
        className = cls
        diffusersVersion = obj["_diffusers_version"] as? String
        var comps: [String: (library: String, className: String)?] = [:]
        for (k, v) in obj where !k.hasPrefix("_") {
            if let pair = v as? [Any], pair.count == 2 {
                if let lib = pair[0] as? String, let c = pair[1] as? String { comps[k] = (lib, c) } else { comps[k] = .some(nil) }
            }
        }
        components = comps
    }
}

/// The folders of a diffusers-layout checkpoint that the engine uses.
public struct CheckpointLayout: Sendable {
    public enum DenoiserKind: String, Sendable {
        /// DeciDiffusion's U-Net-NAS in `flexible_unet/`.
        case unetNAS = "flexible_unet"
        /// A Stable Diffusion 1.x/2.x `UNet2DConditionModel` in `unet/`.
        case unet2DCondition = "unet"
    }

    public let root: URL
    public let index: ModelIndex?
    public let denoiser: DenoiserKind
    /// Components the checkpoint has (listed in model_index.json or present as a folder) that the
    /// engine does not run, sorted; callers say so rather than failing. DeciDiffusion's `unet/` is one.
    public let skipped: [String]

    public var tokenizer: URL { root.appendingPathComponent("tokenizer") }
    public var textEncoder: URL { root.appendingPathComponent("text_encoder") }
    public var vae: URL { root.appendingPathComponent("vae") }
    public var scheduler: URL { root.appendingPathComponent("scheduler") }
    public var denoiserFolder: URL { root.appendingPathComponent(denoiser.rawValue) }

    /// Inspects `root`: when `flexible_unet/` exists it is the denoiser (its `unet/` is ignored),
    /// otherwise `unet/`. Every required folder must exist.
    public init(root: URL) throws {
        self.root = root
        let fm = FileManager.default
        func isDir(_ name: String) -> Bool {
            var d: ObjCBool = false
            return fm.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &d) && d.boolValue
        }
        let indexURL = root.appendingPathComponent("model_index.json")
        index = fm.fileExists(atPath: indexURL.path) ? try ModelIndex(contentsOf: indexURL) : nil
        if isDir("flexible_unet") { denoiser = .unetNAS } else if isDir("unet") { denoiser = .unet2DCondition } else {
            throw CheckpointError("\(root.path): no denoiser folder (expected flexible_unet/ or unet/)")
        }
        let required = [("tokenizer", "the CLIP tokenizer: vocab.json, merges.txt"), ("text_encoder", "the CLIP text encoder"),
                        ("vae", "the autoencoder"), ("scheduler", "scheduler_config.json")]
        for (needed, what) in required where !isDir(needed) {
            throw CheckpointError("\(root.path): missing the \(needed)/ folder (\(what)); is this a diffusers pipeline folder?")
        }
        // Everything the checkpoint has that generation does not use: listed in model_index.json
        // (safety checker, feature extractor, ...) or a known optional folder, and DeciDiffusion's
        // unused SD `unet/`.
        let used: Set<String> = ["tokenizer", "text_encoder", "vae", "scheduler", denoiser.rawValue]
        var skip = Set(index?.components.compactMap { name, entry in entry == nil ? nil : name } ?? [])
        for name in ["safety_checker", "feature_extractor", "image_encoder", "unet"] where isDir(name) { skip.insert(name) }
        skipped = skip.subtracting(used).sorted()
    }

    /// Resolves a user's model argument: a folder path, or a Hugging Face repo id (`owner/name`)
    /// looked up in the local hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).
    public static func locate(_ spec: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let fm = FileManager.default
        let expanded = (spec as NSString).expandingTildeInPath
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: expanded, isDirectory: &isDir) {
            guard isDir.boolValue else { throw CheckpointError("\(expanded) is a file; give the checkpoint folder (with model_index.json)") }
            return URL(fileURLWithPath: expanded)
        }
        let parts = spec.split(separator: "/")
        guard parts.count == 2, !spec.hasPrefix("."), !spec.hasPrefix("/") else {
            throw CheckpointError("model '\(spec)' not found: no such folder")
        }
        var caches: [String] = []
        if let c = environment["HF_HUB_CACHE"] { caches.append(c) }
        if let h = environment["HF_HOME"] { caches.append(h + "/hub") }
        caches.append((environment["HOME"] ?? NSHomeDirectory()) + "/.cache/huggingface/hub")
        let repoDir = "models--\(parts[0])--\(parts[1])"
        for cache in caches {
            let base = URL(fileURLWithPath: cache).appendingPathComponent(repoDir)
            let snapshots = base.appendingPathComponent("snapshots")
            guard let revs = try? fm.contentsOfDirectory(atPath: snapshots.path), !revs.isEmpty else { continue }
            // Prefer the revision refs/main points at; otherwise the most recently modified one.
            if let main = try? String(contentsOf: base.appendingPathComponent("refs/main"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines), revs.contains(main) {
                return snapshots.appendingPathComponent(main)
            }
            let newest = revs.max { a, b in
                let da = (try? fm.attributesOfItem(atPath: snapshots.appendingPathComponent(a).path)[.modificationDate] as? Date) ?? .distantPast
                let db = (try? fm.attributesOfItem(atPath: snapshots.appendingPathComponent(b).path)[.modificationDate] as? Date) ?? .distantPast
                return da < db
            }
            if let newest { return snapshots.appendingPathComponent(newest) }
        }
        // Never fetched implicitly: a checkpoint is gigabytes, so the user runs the download on purpose.
        throw CheckpointError("model '\(spec)' not found: no such folder, and not in the Hugging Face cache (\(caches.joined(separator: ", "))). "
                              + "Download it first with: decidiffusion download \(spec)")
    }
}
