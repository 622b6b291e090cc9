/// A rewrite from the key a loader asks for to the name an older checkpoint uses for it.
///
/// Renames are tried only when the requested key is missing, so a checkpoint in the current naming
/// is never affected. Each rule is tried alone, then all of a scope's rules together (for keys
/// needing more than one rewrite).
public struct KeyRename: Sendable, Hashable, CustomStringConvertible {
    /// Where in the key the rule matches.
    public enum Position: Sendable, Hashable {
        /// The key starts with `current`.
        case prefix
        /// The key ends with `current`.
        case suffix
        /// `current` appears as whole dot-separated segments (`to_out.0` matches in
        /// `attentions.0.to_out.0.weight` but `to_q` does not match in `to_qk.weight`).
        case segment
    }

    public let position: Position
    /// The text in the key the loader asks for.
    public let current: String
    /// What the older checkpoint has in its place.
    public let legacy: String

    public init(_ position: Position, current: String, legacy: String) {
        self.position = position
        self.current = current
        self.legacy = legacy
    }

    public static func prefix(_ current: String, legacy: String) -> KeyRename { KeyRename(.prefix, current: current, legacy: legacy) }
    public static func suffix(_ current: String, legacy: String) -> KeyRename { KeyRename(.suffix, current: current, legacy: legacy) }
    public static func segment(_ current: String, legacy: String) -> KeyRename { KeyRename(.segment, current: current, legacy: legacy) }

    /// diffusers' pre-0.14 VAE attention names (`query`, `key`, `value`, `proj_attn`), which some
    /// SD 1.x VAE checkpoints still use; the tensors have the same shapes as the new ones.
    public static let vaeLegacyAttention: [KeyRename] = [
        .segment("to_q", legacy: "query"),
        .segment("to_k", legacy: "key"),
        .segment("to_v", legacy: "value"),
        .segment("to_out.0", legacy: "proj_attn"),
    ]

    public var description: String {
        switch position {
        case .prefix: "prefix '\(current)' <- '\(legacy)'"
        case .suffix: "suffix '\(current)' <- '\(legacy)'"
        case .segment: "segment '\(current)' <- '\(legacy)'"
        }
    }

    /// `key` rewritten to the legacy naming, or nil when the rule does not match.
    public func legacyKey(for key: String) -> String? {
        switch position {
        case .prefix:
            guard key.hasPrefix(current) else { return nil }
            return legacy + key.dropFirst(current.count)
        case .suffix:
            guard key.hasSuffix(current) else { return nil }
            return key.dropLast(current.count) + legacy
        case .segment:
            let keyParts = key.split(separator: ".", omittingEmptySubsequences: false)
            let ruleParts = current.split(separator: ".", omittingEmptySubsequences: false)
            guard !ruleParts.isEmpty, keyParts.count >= ruleParts.count else { return nil }
            var out: [Substring] = []
            var i = 0
            var matched = false
            while i < keyParts.count {
                if i + ruleParts.count <= keyParts.count, Array(keyParts[i..<(i + ruleParts.count)]) == ruleParts {
                    out.append(Substring(legacy))
                    i += ruleParts.count
                    matched = true
                } else {
                    out.append(keyParts[i])
                    i += 1
                }
            }
            return matched ? out.joined(separator: ".") : nil
        }
    }

    /// Candidate legacy keys for `key` under `rules`: each rule alone, then all together.
    static func candidates(for key: String, rules: [KeyRename]) -> [String] {
        var out: [String] = []
        for rule in rules {
            if let k = rule.legacyKey(for: key), !out.contains(k) { out.append(k) }
        }
        if rules.count > 1 {
            var k = key
            for rule in rules { k = rule.legacyKey(for: k) ?? k }
            if k != key, !out.contains(k) { out.append(k) }
        }
        return out
    }
}
