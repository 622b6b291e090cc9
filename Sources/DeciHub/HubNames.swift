import Foundation

/// Checks on every name that becomes part of a path or a URL: the repo id and revision the user
/// gives, and the file names, ETags and commit hashes the server sends. A hostile or broken server
/// must not be able to write outside the cache (`../`, absolute paths) or make a blob name of junk.
public enum HubNames {
    /// `owner/name` as the Hub allows it: letters, digits, `-`, `_`, `.`; no `--` or `..` (the cache
    /// folder joins the parts with `--`).
    public static func validateRepoID(_ id: String) throws(HubError) {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ isRepoPart($0) }) else {
            throw .invalidName("'\(id)' is not a Hub repo id: expected OWNER/NAME (letters, digits, '-', '_', '.'), e.g. Deci/DeciDiffusion-v1-0")
        }
    }

    private static func isRepoPart(_ part: Substring) -> Bool {
        guard (1...96).contains(part.count), !part.contains("--"), !part.contains(".."),
              let first = part.first, first.isASCII, first.isLetter || first.isNumber,
              !part.hasSuffix(".") else { return false }
        return part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// A branch, tag or commit, possibly with slashes (`refs/pr/1`); stored as `refs/<revision>`.
    public static func validateRevision(_ revision: String) throws(HubError) {
        let components = revision.split(separator: "/", omittingEmptySubsequences: false)
        let ok = (1...255).contains(revision.count) && components.allSatisfy { c in
            !c.isEmpty && c != "." && c != ".." && c.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.+".contains($0)) }
        }
        guard ok else { throw .invalidName("revision '\(revision)' is not a branch, tag or commit name the cache can store") }
    }

    public static func isCommitHash(_ s: String) -> Bool { s.count == 40 && s.allSatisfy(\.isHexDigit) }

    /// A path inside the repo as the server lists it: relative, `/`-separated, no `.`/`..`/empty
    /// components, no backslashes or control characters, of bounded length.
    public static func validateRepoFile(_ path: String) throws(HubError) {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        let ok = (1...1024).contains(path.utf8.count) && components.count <= 16 && components.allSatisfy { c in
            !c.isEmpty && c != "." && c != ".." && c.utf8.count <= 255
                && !c.unicodeScalars.contains { $0.value < 0x20 || $0 == "\\" || $0 == "\u{7f}" }
        }
        guard ok else {
            throw .badResponse("the server listed the file name '\(path.debugDescription.dropFirst().dropLast())', which is not a safe relative path (absolute, '..', empty or control characters); refusing it")
        }
    }

    /// ETags name blobs: a git blob sha1 (40 hex) or an LFS sha256 (64 hex), after removing the
    /// quotes and a weak `W/` prefix (as huggingface_hub normalises them).
    public static func normalizedETag(_ raw: String, file: String) throws(HubError) -> String {
        var tag = raw.trimmingCharacters(in: .whitespaces)
        if tag.hasPrefix("W/") { tag.removeFirst(2) }
        tag = tag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard tag.count == 40 || tag.count == 64, tag.allSatisfy(\.isHexDigit) else {
            throw .badResponse("\(file): ETag '\(raw.prefix(80))' is neither a git sha1 nor a sha256, so the file cannot be verified")
        }
        return tag.lowercased()
    }

    /// The file name folder of a repo in the cache: `models--ORG--NAME`.
    public static func repoFolderName(_ repoID: String) -> String {
        "models--" + repoID.replacingOccurrences(of: "/", with: "--")
    }

    /// Percent-encodes one path segment (or a path whose `/` stay separators).
    static func escapePath(_ s: String, keepSlashes: Bool) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~" + (keepSlashes ? "/" : ""))
        // alphanumerics includes non-ASCII letters; encode everything outside ASCII.
        return s.unicodeScalars.map { scalar -> String in
            if scalar.isASCII, allowed.contains(scalar) { return String(scalar) }
            return String(scalar).utf8.map { String(format: "%%%02X", $0) }.joined()
        }.joined()
    }
}
