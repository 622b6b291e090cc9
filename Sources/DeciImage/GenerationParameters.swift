import DeciJSON

/// The settings that produced an image, formatted as the `parameters` PNG text chunk that
/// AUTOMATIC1111's web UI writes (and stable-diffusion.cpp, ComfyUI readers, civitai and
/// others read):
///
///     a prompt, possibly over several lines
///     Negative prompt: what to avoid
///     Steps: 30, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: DeciDiffusion-v1-0, Guidance rescale: 0.7
///
/// The negative-prompt line is left out when it is empty. Values containing a comma, colon or
/// newline are written as JSON strings, as the web UI does, so they parse back unambiguously.
public struct GenerationParameters: Sendable, Equatable {
    /// A key/value written after the standard fields, in order.
    public struct Field: Sendable, Equatable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    public var prompt: String
    public var negativePrompt: String
    public var steps: Int
    public var sampler: String
    public var cfgScale: Double
    public var seed: UInt64
    public var width: Int
    public var height: Int
    /// Model name (e.g. the checkpoint folder's name); omitted when nil.
    public var model: String?
    /// Further fields such as "Guidance rescale", "Denoising strength", "RNG".
    public var extra: [Field]

    public init(prompt: String, negativePrompt: String = "", steps: Int, sampler: String, cfgScale: Double,
                seed: UInt64, width: Int, height: Int, model: String? = nil, extra: [Field] = []) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.sampler = sampler
        self.cfgScale = cfgScale
        self.seed = seed
        self.width = width
        self.height = height
        self.model = model
        self.extra = extra
    }

    /// The fields of the last line, in the order they are written.
    public var fields: [Field] {
        var f = [
            Field("Steps", String(steps)),
            Field("Sampler", sampler),
            Field("CFG scale", Self.formatNumber(cfgScale)),
            Field("Seed", String(seed)),
            Field("Size", "\(width)x\(height)"),
        ]
        if let model { f.append(Field("Model", model)) }
        return f + extra
    }

    /// The `parameters` chunk text.
    public var text: String {
        var out = prompt
        if !negativePrompt.isEmpty { out += "\nNegative prompt: " + negativePrompt }
        out += "\n" + fields.map { "\($0.key): \(Self.quoteIfNeeded($0.value))" }.joined(separator: ", ")
        return out.trimmingWhitespaceAndNewlines()
    }

    /// Numbers as Python's `str(float)` prints them for ordinary values ("7.5", "7.0"), as the web UI
    /// writes the CFG scale.
    static func formatNumber(_ value: Double) -> String { "\(value)" }

    static func quoteIfNeeded(_ value: String) -> String {
        guard value.contains(",") || value.contains(":") || value.contains("\n") else { return value }
        return jsonQuoted(value)
    }

    /// Parses a `parameters` text as the web UI does: the last line holds the fields when it has at
    /// least three `key: value` pairs; lines before it are the prompt, up to a line starting with
    /// "Negative prompt:". Returns nil when Steps, Sampler, CFG scale, Seed or Size is missing or
    /// malformed. Unknown fields land in `extra`.
    public static func parse(_ text: String) -> GenerationParameters? {
        var lines = text.trimmingWhitespaceAndNewlines().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let last = lines.popLast() else { return nil }
        let pairs = parseFields(last)
        guard pairs.count >= 3 else { return nil }
        var prompt: [String] = [], negative: [String] = []
        var inNegative = false
        for raw in lines {
            var line = raw.trimmingWhitespaceAndNewlines()
            if line.hasPrefix("Negative prompt:") {
                inNegative = true
                line = String(line.dropFirst("Negative prompt:".count)).trimmingWhitespaceAndNewlines()
            }
            if inNegative { negative.append(line) } else { prompt.append(line) }
        }
        var values: [String: String] = [:]
        var extra: [Field] = []
        let standard: Set<String> = ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model"]
        for (k, v) in pairs {
            if standard.contains(k) { values[k] = v } else { extra.append(Field(k, v)) }
        }
        guard let steps = values["Steps"].flatMap({ Int($0) }),
              let sampler = values["Sampler"],
              let cfg = values["CFG scale"].flatMap({ Double($0) }),
              let seed = values["Seed"].flatMap({ UInt64($0) }),
              let size = values["Size"]?.split(separator: "x"), size.count == 2,
              let w = Int(size[0]), let h = Int(size[1]) else { return nil }
        return GenerationParameters(prompt: prompt.joined(separator: "\n"), negativePrompt: negative.joined(separator: "\n"),
                                    steps: steps, sampler: sampler, cfgScale: cfg, seed: seed, width: w, height: h,
                                    model: values["Model"], extra: extra)
    }

    /// Splits "k: v, k2: \"quoted, value\"" into pairs, decoding JSON-quoted values.
    static func parseFields(_ line: String) -> [(String, String)] {
        let s = Array(line.unicodeScalars)
        var i = 0
        var out: [(String, String)] = []
        while i < s.count {
            while i < s.count, s[i] == " " || s[i] == "," { i += 1 }
            let keyStart = i
            while i < s.count, s[i] != ":" , s[i] != "," { i += 1 }
            guard i < s.count, s[i] == ":" else { break }
            let key = String(String.UnicodeScalarView(s[keyStart..<i])).trimmingWhitespaceAndNewlines()
            i += 1
            while i < s.count, s[i] == " " { i += 1 }
            var value = String.UnicodeScalarView()
            if i < s.count, s[i] == "\"" {
                i += 1
                while i < s.count, s[i] != "\"" {
                    if s[i] == "\\", i + 1 < s.count {
                        i += 1
                        switch s[i] {
                        case "n": value.append("\n")
                        case "r": value.append("\r")
                        case "t": value.append("\t")
                        case "b": value.append("\u{08}")
                        case "f": value.append("\u{0C}")
                        case "u" where i + 4 < s.count:
                            let hex = String(String.UnicodeScalarView(s[(i + 1)...(i + 4)]))
                            if let v = UInt32(hex, radix: 16), let u = Unicode.Scalar(v) { value.append(u) }
                            i += 4
                        default: value.append(s[i])
                        }
                    } else {
                        value.append(s[i])
                    }
                    i += 1
                }
                i += 1
            } else {
                while i < s.count, s[i] != "," { value.append(s[i]); i += 1 }
            }
            if !key.isEmpty { out.append((key, String(value).trimmingWhitespaceAndNewlines())) }
        }
        return out
    }
}

extension String {
    func trimmingWhitespaceAndNewlines() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
