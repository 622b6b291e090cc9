// Naming LoRAs: `--lora FILE[:SCALE]` and A1111's `<lora:NAME:TE[:UNET]>` prompt tags
// (stable-diffusion-webui `modules/extra_networks.py`, `extensions-builtin/Lora/extra_networks_lora.py`),
// resolved to files and loaded as a ``LoRASet``.
import DeciModels
import Foundation

/// One LoRA asked for, by path or by name (a prompt tag), with A1111's two multipliers.
public struct LoRAReference: Sendable, Equatable {
    /// A file path (`--lora`) or a name to look up in the LoRA folder (a prompt tag).
    public var name: String
    public var textEncoderMultiplier: Float
    public var denoiserMultiplier: Float

    public init(name: String, textEncoderMultiplier: Float = 1, denoiserMultiplier: Float? = nil) {
        self.name = name
        self.textEncoderMultiplier = textEncoderMultiplier
        self.denoiserMultiplier = denoiserMultiplier ?? textEncoderMultiplier
    }

    /// `FILE` or `FILE:SCALE` (the last `:` followed by a number splits; a path may hold colons).
    public static func parse(option: String) throws(RequestError) -> LoRAReference {
        if let colon = option.lastIndex(of: ":"), let scale = Float(option[option.index(after: colon)...]) {
            guard scale.isFinite else { throw RequestError("lora: \(option): the scale is not finite") }
            return LoRAReference(name: String(option[..<colon]), textEncoderMultiplier: scale)
        }
        return LoRAReference(name: option)
    }

    /// Removes every extra-network tag `<type:args>` from `prompt` (as A1111 does, leaving the
    /// spaces around it) and returns the LoRAs among them (`lora`, `lyco`): `<lora:name>`,
    /// `<lora:name:te>`, `<lora:name:te:unet>`, `<lora:name:te=0.5:unet=1>`. Other tag types are
    /// named in `ignored`.
    public static func extractTags(from prompt: String) throws(RequestError) -> (prompt: String, loras: [LoRAReference], ignored: [String]) {
        var out = "", loras: [LoRAReference] = [], ignored: [String] = []
        var rest = Substring(prompt)
        while let open = rest.firstIndex(of: "<") {
            out += rest[..<open]
            let after = rest[rest.index(after: open)...]
            let type = after.prefix { $0 == "_" || $0.isLetter || $0.isNumber }
            guard !type.isEmpty, let colon = after.dropFirst(type.count).first, colon == ":",
                  let close = after.firstIndex(of: ">"), after.index(after: type.endIndex) < close else {
                out.append("<")
                rest = after
                continue
            }
            let args = after[after.index(after: type.endIndex)..<close]
            rest = after[after.index(after: close)...]
            guard type == "lora" || type == "lyco" else {
                ignored.append("<\(type):\(args)>")
                continue
            }
            loras.append(try tagReference(String(args)))
        }
        return (out + rest, loras, ignored)
    }

    static func tagReference(_ args: String) throws(RequestError) -> LoRAReference {
        var positional: [String] = [], named: [String: String] = [:]
        for item in args.split(separator: ":", omittingEmptySubsequences: false).map(String.init) {
            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
            if parts.count == 2 { named[String(parts[0])] = String(parts[1]) } else { positional.append(item) }
        }
        guard let name = positional.first, !name.isEmpty else { throw RequestError("prompt: <lora:\(args)> names no LoRA") }
        func number(_ text: String?, _ what: String) throws(RequestError) -> Float? {
            guard let text else { return nil }
            guard let v = Float(text), v.isFinite else { throw RequestError("prompt: <lora:\(args)>: \(what) \"\(text)\" is not a number") }
            return v
        }
        let te = try number(named["te"] ?? (positional.count > 1 ? positional[1] : nil), "te multiplier") ?? 1
        let unet = try number(named["unet"] ?? (positional.count > 2 ? positional[2] : nil), "unet multiplier") ?? te
        return LoRAReference(name: name, textEncoderMultiplier: te, denoiserMultiplier: unet)
    }

    /// The file this reference names: a path as given, or for a bare name `NAME.safetensors` in
    /// `directory` (or any folder below it). Pickle files (`.pt`, `.ckpt`, `.bin`) are refused:
    /// loading them can run code.
    public func locate(in directory: URL?) throws(RequestError) -> String {
        let fm = FileManager.default
        var candidates: [String] = []
        if name.contains("/") || name.hasSuffix(".safetensors") || name.hasSuffix(".pt") || name.hasSuffix(".ckpt") {
            candidates.append(name)
        }
        if let directory {
            candidates.append(directory.appendingPathComponent(name + ".safetensors").path)
            if let walker = fm.enumerator(at: directory, includingPropertiesForKeys: nil) {
                for case let url as URL in walker where url.deletingPathExtension().lastPathComponent == name {
                    candidates.append(url.path)
                }
            }
        } else if !candidates.contains(name) {
            candidates.append(name)
        }
        guard let found = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
            throw RequestError("lora: \(name): no such file\(directory.map { " (looked for \($0.path)/\(name).safetensors and below)" } ?? "")")
        }
        try Self.refusePickle(found)
        return found
    }

    /// Pickle checkpoints can execute code when unpickled; this engine reads only safetensors.
    static func refusePickle(_ path: String) throws(RequestError) {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        guard ["pt", "ckpt", "bin", "pth", "pkl"].contains(ext) else { return }
        throw RequestError("\(path): a pickle file, which can run arbitrary code when loaded, so it is refused; convert it to .safetensors on a machine you trust (e.g. load it with torch.load(weights_only=True) and save the tensors with safetensors' save_file)")
    }

    /// Loads the references as a ``LoRASet``: files located (bare names in `directory`), read and
    /// checked; the same file named twice merges twice (A1111 applies each tag).
    public static func load(_ references: [LoRAReference], directory: URL?, lenient: Bool) throws -> LoRASet? {
        guard !references.isEmpty else { return nil }
        let applications = try references.map { r in
            LoRAApplication(file: try LoRAFile(path: try r.locate(in: directory)), textEncoderMultiplier: r.textEncoderMultiplier,
                            denoiserMultiplier: r.denoiserMultiplier)
        }
        return try LoRASet(applications, lenient: lenient)
    }
}
