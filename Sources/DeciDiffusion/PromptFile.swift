// A prompts file as A1111's "Prompts from file or textbox" script reads it (stable-diffusion-webui
// `scripts/prompts_from_file.py`): one job per line, either the prompt itself or shell-quoted
// `--option value` pairs.

/// A prompts-file line that cannot be read; the message names the file, the line and the option.
public struct PromptFileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One line of a prompts file: the prompt and whatever the line overrides (nil: the command's value).
public struct PromptFileEntry: Sendable, Equatable {
    /// nil on an option line without `--prompt`: the command's prompt, as A1111 keeps the UI's.
    public var prompt: String?
    public var negativePrompt: String?
    public var seed: UInt64?
    public var steps: Int?
    public var guidanceScale: Double?
    public var width: Int?
    public var height: Int?
    public var scheduler: String?
    public var imagesPerPrompt: Int?

    public init(prompt: String?) { self.prompt = prompt }

    /// `base` with this line's prompt and overrides.
    public func applied(to base: GenerationRequest) -> GenerationRequest {
        var r = base
        if let prompt { r.prompts = [prompt] }
        if let negativePrompt { r.negativePrompts = [negativePrompt] }
        if let seed { r.seed = seed }
        r.steps = steps ?? r.steps
        r.guidanceScale = guidanceScale ?? r.guidanceScale
        r.width = width ?? r.width
        r.height = height ?? r.height
        r.scheduler = scheduler ?? r.scheduler
        r.imagesPerPrompt = imagesPerPrompt ?? r.imagesPerPrompt
        return r
    }
}

public enum PromptFile {
    /// The entries of `text` (blank lines skipped). A line starting with `--` is split as a shell
    /// would (quotes, backslashes) into `--option value` pairs: `--prompt`, `--negative_prompt`,
    /// `--seed`, `--steps`, `--cfg_scale`, `--width`, `--height`, `--sampler_name`, `--batch_size`
    /// (A1111's names; `-` for `_` accepted); any other line is a prompt as it stands. `path` names
    /// the file in errors.
    public static func parse(_ text: String, path: String) throws(PromptFileError) -> [PromptFileEntry] {
        var entries: [PromptFileEntry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace()
            guard !line.isEmpty else { continue }
            let place = "\(path):\(index + 1)"
            guard line.hasPrefix("--") else {
                entries.append(PromptFileEntry(prompt: line))
                continue
            }
            entries.append(try options(try shellWords(line, place: place), place: place))
        }
        return entries
    }

    static func options(_ words: [String], place: String) throws(PromptFileError) -> PromptFileEntry {
        var entry = PromptFileEntry(prompt: nil)
        var i = 0
        while i < words.count {
            let word = words[i]
            guard word.hasPrefix("--") else { throw PromptFileError("\(place): \"\(word)\" is not an option (options start with --)") }
            let name = String(word.dropFirst(2)).replacingOccurrences(of: "-", with: "_")
            guard i + 1 < words.count else { throw PromptFileError("\(place): --\(name) needs a value") }
            let value = words[i + 1]
            func number<T: LosslessStringConvertible>(_: T.Type) throws(PromptFileError) -> T {
                guard let v = T(value) else { throw PromptFileError("\(place): --\(name) \"\(value)\" is not a valid number") }
                return v
            }
            switch name {
            case "prompt": entry.prompt = value
            case "negative_prompt": entry.negativePrompt = value
            case "seed": entry.seed = try number(UInt64.self)
            case "steps": entry.steps = try number(Int.self)
            case "cfg_scale": entry.guidanceScale = try number(Double.self)
            case "width": entry.width = try number(Int.self)
            case "height": entry.height = try number(Int.self)
            case "sampler_name": entry.scheduler = value
            case "batch_size": entry.imagesPerPrompt = try number(Int.self)
            default:
                throw PromptFileError("\(place): unknown option --\(name) (known: prompt, negative_prompt, seed, steps, cfg_scale, width, height, sampler_name, batch_size)")
            }
            i += 2
        }
        return entry
    }

    /// POSIX shell word splitting as Python's `shlex.split`: whitespace separates words, '...'
    /// is literal, inside "..." a backslash escapes only `\` and `"`, outside quotes it escapes
    /// the next character.
    static func shellWords(_ line: String, place: String) throws(PromptFileError) -> [String] {
        var words: [String] = []
        var current = "", inWord = false
        var chars = Array(line)[...]
        while let c = chars.popFirst() {
            switch c {
            case "'":
                inWord = true
                guard let end = chars.firstIndex(of: "'") else { throw PromptFileError("\(place): unclosed ' quote") }
                current += String(chars[..<end])
                chars = chars[(end + 1)...]
            case "\"":
                inWord = true
                var closed = false
                while let d = chars.popFirst() {
                    if d == "\"" { closed = true; break }
                    if d == "\\", let e = chars.first, e == "\\" || e == "\"" {
                        current.append(e)
                        chars = chars.dropFirst()
                    } else {
                        current.append(d)
                    }
                }
                guard closed else { throw PromptFileError("\(place): unclosed \" quote") }
            case "\\":
                inWord = true
                if let e = chars.popFirst() { current.append(e) }
            case _ where c.isWhitespace:
                if inWord { words.append(current) }
                (current, inWord) = ("", false)
            default:
                inWord = true
                current.append(c)
            }
        }
        if inWord { words.append(current) }
        return words
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
