import Foundation

/// What can go wrong fetching a repo from the Hub; each case's description says what to do about it.
public enum HubError: Error, CustomStringConvertible, Equatable {
    /// The repo id, revision or a name the server sent is not one the cache layout can hold safely.
    case invalidName(String)
    /// 401: no token, or a token the Hub does not accept, for a private, gated or missing repo.
    case unauthorized(repo: String, tokenSent: Bool, serverMessage: String?)
    /// 403: the token is valid but may not read this repo (gated: terms not accepted).
    case forbidden(repo: String, url: String, serverMessage: String?)
    /// 404 on the repo, the revision or one file.
    case notFound(what: String, serverMessage: String?)
    /// Any other status the tool cannot act on.
    case httpStatus(code: Int, url: String, serverMessage: String?)
    /// The server's answer breaks the protocol: missing headers, bad JSON, absurd sizes, too many redirects.
    case badResponse(String)
    /// The bytes on disk do not match the size or hash the server announced.
    case corrupt(file: String, reason: String)
    /// HF_HUB_OFFLINE is set and the repo (at that revision) is not in the cache.
    case offlineNotCached(repo: String, revision: String, cache: String)
    /// The connection could not be made or failed before any file data.
    case transport(url: String, reason: String)
    /// A file's download broke off; its `.incomplete` file is kept for the next run to resume.
    case interrupted(file: String, reason: String)
    /// Reading or writing the cache.
    case fileSystem(path: String, reason: String)
    /// The repo is not a diffusers pipeline the engine can run.
    case unsupportedRepo(String)

    public var description: String {
        func quoted(_ message: String?) -> String { message.map { " (server: \($0))" } ?? "" }
        switch self {
        case .invalidName(let m): return m
        case .unauthorized(let repo, let tokenSent, let m):
            if tokenSent {
                return "the Hub rejected the token for \(repo) (401)\(quoted(m)): HF_TOKEN is set but is not a valid token. "
                    + "Create a read token at https://huggingface.co/settings/tokens and export HF_TOKEN=hf_..."
            }
            return "the Hub refused \(repo) without a token (401)\(quoted(m)): the repo is private or gated, or does not exist. "
                + "Check the name; for a gated or private repo create a read token at https://huggingface.co/settings/tokens, "
                + "accept the repo's terms on its page if it has any, and export HF_TOKEN=hf_..."
        case .forbidden(let repo, let url, let m):
            return "the Hub refused access to \(repo) (403)\(quoted(m)): the token in HF_TOKEN may not read it. "
                + "If the repo is gated, accept its conditions at \(url) while logged in as the token's owner, "
                + "or use a token with read access to it"
        case .notFound(let what, let m): return "\(what) not found on the Hub (404)\(quoted(m))"
        case .httpStatus(let code, let url, let m): return "HTTP \(code) from \(url)\(quoted(m))"
        case .badResponse(let m): return "unexpected answer from the Hub: \(m)"
        case .corrupt(let file, let reason): return "\(file): download rejected, \(reason); the bad copy was deleted, run the command again"
        case .offlineNotCached(let repo, let revision, let cache):
            return "HF_HUB_OFFLINE is set and \(repo) at revision '\(revision)' is not complete in the cache (\(cache)); "
                + "unset HF_HUB_OFFLINE to download it"
        case .transport(let url, let reason):
            return "cannot reach \(url): \(reason); check the network (and HF_ENDPOINT if set)"
        case .interrupted(let file, let reason):
            return "\(file): the download broke off (\(reason)); what arrived is kept and running the command again resumes from there"
        case .fileSystem(let path, let reason): return "\(path): \(reason)"
        case .unsupportedRepo(let m): return m
        }
    }
}
