import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A repo's file list at one commit: `GET /api/models/<repo>/revision/<rev>?blobs=true`.
public struct RepoInfo: Sendable {
    public struct Sibling: Sendable {
        public var path: String
        public var size: Int64?
        /// sha256 of an LFS file, as listed (cross-checked with the resolve ETag).
        public var lfsSHA256: String?
    }
    public var commit: String
    public var siblings: [Sibling]
}

/// What a HEAD on `resolve/<commit>/<file>` says about a file.
public struct FileMetadata: Sendable {
    /// The blob name and the hash to verify: `X-Linked-Etag` (LFS) or `ETag`, normalised.
    public var etag: String
    public var size: Int64
    public var commit: String?
    /// Where the bytes are: the CDN URL an LFS redirect points at, else the resolve URL.
    public var location: String
}

/// The Hub's HTTP endpoints, over AsyncHTTPClient. Redirects are followed by hand: a HEAD follows
/// only relative ones (a renamed repo) because the LFS redirect's own headers carry the metadata;
/// a GET follows any, and drops the token when the host changes (a CDN must not see it).
final class HubClient: Sendable {
    let settings: HubSettings
    private let http: HTTPClient

    /// Largest JSON answer and error body read; larger ones are refused (a file list of a huge
    /// repo is a few MB).
    static let maxJSONBytes = 32 << 20
    static let maxRedirects = 5

    init(settings: HubSettings) {
        self.settings = settings
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(30), read: .seconds(60)))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func shutdown() async { try? await http.shutdown() }

    func resolveURL(repo: String, revision: String, file: String) -> String {
        settings.endpoint + "/" + repo + "/resolve/" + HubNames.escapePath(revision, keepSlashes: false) + "/"
            + HubNames.escapePath(file, keepSlashes: true)
    }

    func repoInfo(repo: String, revision: String) async throws(HubError) -> RepoInfo {
        let url = settings.endpoint + "/api/models/" + repo + "/revision/" + HubNames.escapePath(revision, keepSlashes: false) + "?blobs=true"
        let response = try await send(url: url, method: .GET, followRedirects: true, what: "\(repo) at revision '\(revision)'", repo: repo)
        let body: Data
        do { body = Data(try await response.body.collect(upTo: Self.maxJSONBytes).readableBytesView) } catch {
            throw .badResponse("\(url): the file list is larger than \(Self.maxJSONBytes >> 20) MB or was cut off (\(error))")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw .badResponse("\(url): not a JSON object")
        }
        guard let sha = obj["sha"] as? String, HubNames.isCommitHash(sha) else {
            throw .badResponse("\(url): no commit hash in \"sha\"")
        }
        guard let list = obj["siblings"] as? [[String: Any]] else { throw .badResponse("\(url): no \"siblings\" file list") }
        guard list.count <= 100_000 else { throw .badResponse("\(url): \(list.count) files listed; refusing more than 100000") }
        var siblings: [RepoInfo.Sibling] = []
        for entry in list {
            guard let path = entry["rfilename"] as? String else { throw .badResponse("\(url): a sibling without \"rfilename\"") }
            let lfs = entry["lfs"] as? [String: Any]
            siblings.append(.init(path: path, size: (entry["size"] as? NSNumber)?.int64Value, lfsSHA256: (lfs?["sha256"] as? String)?.lowercased()))
        }
        return RepoInfo(commit: sha.lowercased(), siblings: siblings)
    }

    func metadata(repo: String, commit: String, file: String) async throws(HubError) -> FileMetadata {
        let url = resolveURL(repo: repo, revision: commit, file: file)
        let response = try await send(url: url, method: .HEAD, followRedirects: false, what: "\(repo)/\(file)", repo: repo)
        let h = response.headers
        guard let rawTag = h.first(name: "X-Linked-Etag") ?? h.first(name: "ETag") else {
            throw .badResponse("\(url): no ETag header, so the file cannot be verified (is HF_ENDPOINT a Hub?)")
        }
        let etag = try HubNames.normalizedETag(rawTag, file: file)
        guard let sizeText = h.first(name: "X-Linked-Size") ?? h.first(name: "Content-Length"), let size = Int64(sizeText), size >= 0 else {
            throw .badResponse("\(url): no usable X-Linked-Size / Content-Length header")
        }
        let repoCommit = h.first(name: "X-Repo-Commit")?.lowercased()
        if let repoCommit, !HubNames.isCommitHash(repoCommit) { throw .badResponse("\(url): X-Repo-Commit '\(repoCommit.prefix(60))' is not a commit hash") }
        var location = url
        if (300..<400).contains(Int(response.status.code)), let target = h.first(name: "Location") {
            location = Self.absolute(target, base: url)
        }
        return FileMetadata(etag: etag, size: size, commit: repoCommit, location: location)
    }

    /// Streams `url` into `handle` from byte `offset`, calling `chunk` with each piece. Returns the
    /// offset the server actually resumed from (0 when it ignored the Range header: the caller must
    /// then have truncated the file, which `restart` does).
    func download(url: String, offset: Int64, expectedSize: Int64, file: String, repo: String,
                  restart: () throws(HubError) -> Void, chunk: (UnsafeRawBufferPointer) throws(HubError) -> Void) async throws(HubError) {
        var headers: [(String, String)] = []
        if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
        let response = try await send(url: url, method: .GET, followRedirects: true, what: "\(repo)/\(file)", repo: repo, extraHeaders: headers)
        var received = offset
        switch response.status.code {
        case 206:
            let range = response.headers.first(name: "Content-Range") ?? ""
            guard range.hasPrefix("bytes \(offset)-") else {
                throw .badResponse("\(file): asked for bytes from \(offset), the server sent the range '\(range.prefix(80))'")
            }
        case 200:
            if offset > 0 { try restart(); received = 0 }
        default:
            throw .badResponse("\(file): HTTP \(response.status.code) for a download")
        }
        do {
            for try await buffer in response.body {
                received += Int64(buffer.readableBytes)
                guard received <= expectedSize else {
                    throw HubError.badResponse("\(file): the server sent more than the \(expectedSize) bytes it announced")
                }
                try buffer.withUnsafeReadableBytes { (bytes) throws(HubError) in try chunk(bytes) }
            }
        } catch let error as HubError {
            throw error
        } catch {
            throw .interrupted(file: file, reason: "\(Self.describe(error)) after \(received) of \(expectedSize) bytes")
        }
        guard received == expectedSize else {
            throw .interrupted(file: file, reason: "the connection ended after \(received) of \(expectedSize) bytes")
        }
    }

    /// Sends one request, following redirects as described on the type, and maps failures to
    /// HubError. Returns a 2xx response (or, for a HEAD without redirects, a 3xx one).
    private func send(url: String, method: HTTPMethod, followRedirects: Bool, what: String, repo: String,
                      extraHeaders: [(String, String)] = []) async throws(HubError) -> HTTPClientResponse {
        var current = url
        let origin = Self.host(of: url)
        for _ in 0...Self.maxRedirects {
            var request = HTTPClientRequest(url: current)
            request.method = method
            request.headers.add(name: "User-Agent", value: "decidiffusion; hf_hub-compatible")
            // Content-Length must be the file's size, not a compressed one.
            request.headers.add(name: "Accept-Encoding", value: "identity")
            if let token = settings.token, Self.host(of: current) == origin { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }
            let response: HTTPClientResponse
            do { response = try await http.execute(request, timeout: .seconds(60)) } catch {
                throw .transport(url: current, reason: Self.describe(error))
            }
            let code = Int(response.status.code)
            if (200..<300).contains(code) { return response }
            if (300..<400).contains(code), let location = response.headers.first(name: "Location") {
                let relative = location.hasPrefix("/") && !location.hasPrefix("//")
                if followRedirects || relative {
                    current = Self.absolute(location, base: current)
                    continue
                }
                return response
            }
            throw await Self.statusError(response, code: code, url: current, what: what, repo: repo, settings: settings)
        }
        throw .badResponse("\(url): more than \(Self.maxRedirects) redirects")
    }

    private static func statusError(_ response: HTTPClientResponse, code: Int, url: String, what: String, repo: String,
                                    settings: HubSettings) async -> HubError {
        var message = response.headers.first(name: "X-Error-Message")
        if message == nil, let body = try? await response.body.collect(upTo: 4096),
           let obj = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] {
            message = obj["error"] as? String
        }
        let errorCode = response.headers.first(name: "X-Error-Code")
        switch code {
        case 401:
            return .unauthorized(repo: repo, tokenSent: settings.token != nil, serverMessage: message)
        case 403:
            return .forbidden(repo: repo, url: settings.endpoint + "/" + repo, serverMessage: message)
        case 404:
            let kind = errorCode == "RevisionNotFound" ? "revision of \(what)" : errorCode == "RepoNotFound" ? "repo \(repo)" : what
            return .notFound(what: kind, serverMessage: message)
        default:
            return .httpStatus(code: code, url: url, serverMessage: message)
        }
    }

    static func host(of url: String) -> String? {
        guard let components = URLComponents(string: url) else { return nil }
        return "\(components.scheme ?? "")://\(components.host ?? ""):\(components.port.map(String.init) ?? "")"
    }

    static func absolute(_ location: String, base: String) -> String {
        URL(string: location, relativeTo: URL(string: base))?.absoluteString ?? location
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return "\(e)" }
        return String(describing: error)
    }
}
