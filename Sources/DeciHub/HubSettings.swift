import Foundation

/// Where the Hub is, who we are to it and where its files go, read from the variables
/// huggingface_hub reads, so both tools agree: `HF_ENDPOINT`, `HF_TOKEN` (else the token file
/// `huggingface-cli login` writes), `HF_HUB_OFFLINE`, `HF_HUB_CACHE` / `HF_HOME`.
public struct HubSettings: Sendable {
    public var endpoint: String
    public var token: String?
    public var offline: Bool
    /// The hub cache root: the folder holding `models--ORG--NAME/`.
    public var cacheDirectory: URL

    public init(endpoint: String = "https://huggingface.co", token: String? = nil, offline: Bool = false, cacheDirectory: URL) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.token = token
        self.offline = offline
        self.cacheDirectory = cacheDirectory
    }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func nonEmpty(_ key: String) -> String? {
            guard let v = environment[key]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        let home = nonEmpty("HOME") ?? NSHomeDirectory()
        let hfHome = nonEmpty("HF_HOME") ?? ((nonEmpty("XDG_CACHE_HOME") ?? home + "/.cache") + "/huggingface")
        let cache = nonEmpty("HF_HUB_CACHE") ?? nonEmpty("HUGGINGFACE_HUB_CACHE") ?? hfHome + "/hub"
        var token = nonEmpty("HF_TOKEN") ?? nonEmpty("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let tokenFile = nonEmpty("HF_TOKEN_PATH") ?? hfHome + "/token"
            token = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if token?.isEmpty == true { token = nil }
        }
        // huggingface_hub's truthy values.
        let offline = ["1", "ON", "YES", "TRUE"].contains(nonEmpty("HF_HUB_OFFLINE")?.uppercased() ?? "")
        self.init(endpoint: nonEmpty("HF_ENDPOINT") ?? "https://huggingface.co", token: token, offline: offline,
                  cacheDirectory: URL(fileURLWithPath: (cache as NSString).expandingTildeInPath))
    }
}
