import DeciHub
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore

/// A repo as the test Hub serves it: files at one commit; `.safetensors` files are LFS (served
/// through a redirect to a "CDN" route, named by sha256), the rest are git blobs (named by git sha1).
struct FakeRepo: Sendable {
    var id: String
    var commit: String
    var files: [String: Data]

    static func isLFS(_ path: String) -> Bool { path.hasSuffix(".safetensors") }
    func etag(_ path: String) -> String? { files[path].map { ContentHash.etag(of: $0, lfs: Self.isLFS(path)) } }

    /// The files of a folder on disk (e.g. Models/demo) plus `extra`.
    static func folder(_ url: URL, id: String, extra: [String: Data] = [:]) throws -> FakeRepo {
        var files = extra
        let base = url.standardizedFileURL.path
        let enumerator = FileManager.default.enumerator(atPath: base)
        while let relative = enumerator?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: base + "/" + relative, isDirectory: &isDir), !isDir.boolValue {
                files[relative] = try Data(contentsOf: URL(fileURLWithPath: base + "/" + relative))
            }
        }
        return FakeRepo(id: id, commit: String(repeating: "ab12", count: 10), files: files)
    }
}

/// What the test Hub does besides serving: misbehaviours to trigger, and what it saw.
final class HubScript: @unchecked Sendable {
    private let lock = NSLock()
    private var _requiredToken: String?
    private var _corrupt: Set<String> = []
    private var _dropAfter: [String: Int] = [:]
    private var _announcedSize: [String: Int64] = [:]
    private var _extraListing: [String] = []
    private var _ranges: [String] = []
    private var _authorizations: [String] = []
    private var _requests = 0

    func locked<T>(_ body: () -> T) -> T { lock.lock(); defer { lock.unlock() }; return body() }
    /// Every route answers 401 unless `Authorization: Bearer <token>` (the CDN route excepted).
    var requiredToken: String? { get { locked { _requiredToken } } set { locked { _requiredToken = newValue } } }
    /// Files served with one byte changed.
    var corrupt: Set<String> { get { locked { _corrupt } } set { locked { _corrupt = newValue } } }
    /// File -> bytes sent before the connection is dropped, once.
    var dropAfter: [String: Int] { get { locked { _dropAfter } } set { locked { _dropAfter = newValue } } }
    /// File -> the size the HEAD announces instead of the real one.
    var announcedSize: [String: Int64] { get { locked { _announcedSize } } set { locked { _announcedSize = newValue } } }
    /// Names added to the file list (not served): hostile paths.
    var extraListing: [String] { get { locked { _extraListing } } set { locked { _extraListing = newValue } } }
    /// Range headers the CDN route received, in order.
    var ranges: [String] { locked { _ranges } }
    var authorizations: [String] { locked { _authorizations } }
    var requests: Int { locked { _requests } }

    func takeDrop(_ path: String) -> Int? { locked { _dropAfter.removeValue(forKey: path) } }
    func record(range: String?, authorization: String?) {
        locked {
            _requests += 1
            if let range { _ranges.append(range) }
            if let authorization { _authorizations.append(authorization) }
        }
    }
}

struct DroppedConnection: Error {}

/// A real HTTP server on a loopback port speaking the Hub endpoints `decidiffusion download` uses:
/// `GET /api/models/<repo>/revision/<rev>`, `HEAD/GET /<repo>/resolve/<rev>/<file>` (LFS files
/// redirect to `/cdn/...` with `X-Linked-Etag` / `X-Linked-Size`), and `/cdn/<sha256>` with ranges.
enum FakeHub {
    static func run<T: Sendable>(_ repos: [FakeRepo], script: HubScript = HubScript(),
                                 _ body: @Sendable (_ endpoint: String) async throws -> T) async throws -> T {
        let byID = Dictionary(uniqueKeysWithValues: repos.map { ($0.id, $0) })
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.get("/api/models/:org/:name/revision/:rev") { request, context -> Response in
            script.record(range: nil, authorization: request.headers[.authorization])
            if let denied = authorize(request, script) { return denied }
            guard let repo = byID[try repoID(context)] else { return error(.notFound, code: "RepoNotFound", "Repository not found") }
            let rev = try context.parameters.require("rev")
            guard rev == "main" || rev == repo.commit else { return error(.notFound, code: "RevisionNotFound", "Invalid rev id: \(rev)") }
            var siblings: [[String: Any]] = repo.files.keys.sorted().map { path in
                let data = repo.files[path]!
                var entry: [String: Any] = ["rfilename": path, "size": data.count]
                if FakeRepo.isLFS(path) { entry["lfs"] = ["sha256": repo.etag(path)!, "size": data.count] }
                return entry
            }
            siblings += script.extraListing.map { ["rfilename": $0] }
            let json = try JSONSerialization.data(withJSONObject: ["id": repo.id, "sha": repo.commit, "siblings": siblings])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json)))
        }
        // GET; Hummingbird answers HEAD from it with the same headers and no body.
        router.get("/:org/:name/resolve/:rev/**") { request, context -> Response in
            script.record(range: nil, authorization: request.headers[.authorization])
            if let denied = authorize(request, script) { return denied }
            let id = try repoID(context)
            guard let repo = byID[id] else { return error(.notFound, code: "RepoNotFound", "Repository not found") }
            let path = context.parameters.getCatchAll().joined(separator: "/")
            guard let data = repo.files[path], let etag = repo.etag(path) else { return error(.notFound, code: "EntryNotFound", "\(path) does not exist") }
            let size = script.announcedSize[path] ?? Int64(data.count)
            var headers: HTTPFields = [HTTPField.Name("X-Repo-Commit")!: repo.commit]
            if FakeRepo.isLFS(path) {
                // As the Hub: the metadata sits on the redirect; the CDN URL is absolute.
                let host = request.head.authority ?? "127.0.0.1"
                headers[.location] = "http://\(host)/cdn/\(id)/\(etag)"
                headers[HTTPField.Name("X-Linked-Etag")!] = "\"\(etag)\""
                headers[HTTPField.Name("X-Linked-Size")!] = "\(size)"
                headers[.eTag] = "\"\(ContentHash.etag(of: Data("pointer".utf8), lfs: false))\""
                return Response(status: .found, headers: headers)
            }
            headers[.eTag] = "\"\(etag)\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: served(data, path, script))))
        }
        router.get("/cdn/:org/:name/:sha") { request, context -> Response in
            let range = request.headers[.range]
            script.record(range: range, authorization: request.headers[.authorization])
            guard let repo = byID[try repoID(context)], let sha = context.parameters.get("sha"),
                  let path = repo.files.keys.first(where: { repo.etag($0) == sha }), let data = repo.files[path] else {
                return Response(status: .notFound)
            }
            let bytes = served(data, path, script)
            var start = 0
            if let range, range.hasPrefix("bytes="), range.hasSuffix("-"), let from = Int(range.dropFirst(6).dropLast()) { start = from }
            let slice = bytes[start...]
            var headers: HTTPFields = [.contentLength: "\(slice.count)"]
            if start > 0 { headers[.contentRange] = "bytes \(start)-\(bytes.count - 1)/\(bytes.count)" }
            let status: HTTPResponse.Status = start > 0 ? .partialContent : .ok
            if let drop = script.takeDrop(path) {
                let head = ByteBuffer(bytes: slice.prefix(drop))
                return Response(status: status, headers: headers, body: ResponseBody(contentLength: slice.count) { writer in
                    try await writer.write(head)
                    throw DroppedConnection()
                })
            }
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: slice)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            guard let port = client.port else { throw DroppedConnection() }
            return try await body("http://127.0.0.1:\(port)")
        }
    }

    static func repoID(_ context: BasicRequestContext) throws -> String {
        try context.parameters.require("org") + "/" + context.parameters.require("name")
    }

    static func served(_ data: Data, _ path: String, _ script: HubScript) -> Data {
        guard script.corrupt.contains(path), !data.isEmpty else { return data }
        var bad = data
        bad[bad.count / 2] ^= 0x01
        return bad
    }

    static func authorize(_ request: Request, _ script: HubScript) -> Response? {
        guard let token = script.requiredToken else { return nil }
        if request.headers[.authorization] == "Bearer \(token)" { return nil }
        return error(.unauthorized, code: nil, "Invalid credentials in Authorization header")
    }

    static func error(_ status: HTTPResponse.Status, code: String?, _ message: String) -> Response {
        var headers: HTTPFields = [HTTPField.Name("X-Error-Message")!: message, .contentType: "application/json"]
        if let code { headers[HTTPField.Name("X-Error-Code")!] = code }
        let json = (try? JSONSerialization.data(withJSONObject: ["error": message])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}
