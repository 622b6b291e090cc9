// Key authentication (Bearer, or Basic for A1111 clients) for every route but the open ones (`/healthz`, and `/`, the page that
// asks for the key itself).
import Foundation
import Hummingbird

struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = DeciRequestContext
    let key: [UInt8]
    let openPaths: Set<String>

    init(key: String, openPaths: Set<String> = ["/healthz", "/"]) {
        self.key = Array(key.utf8)
        self.openPaths = openPaths
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) { return try await next(request, context) }
        // Preflight requests carry no credentials; the CORS middleware in front answers them.
        guard let header = request.headers[.authorization], Self.matches(header, key: key) else {
            throw APIError.unauthorized
        }
        var context = context
        context.authenticated = true
        return try await next(request, context)
    }

    /// `Bearer <key>` (the native and OpenAI clients), or HTTP Basic as A1111 clients send it with
    /// `--api-auth user:pass`: the password is the key, or the whole `user:pass` is. An empty header
    /// (Open WebUI sends one when no key is configured) is simply no credentials.
    static func matches(_ header: String, key: [UInt8]) -> Bool {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return false }
        let scheme = parts[0].lowercased(), value = parts[1].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer":
            return constantTimeEqual(Array(value.utf8), key)
        case "basic":
            guard let decoded = Data(base64Encoded: value) else { return false }
            let credentials = [UInt8](decoded)
            let password = credentials.firstIndex(of: UInt8(ascii: ":")).map { Array(credentials[($0 + 1)...]) } ?? []
            // Both comparisons run, so timing does not tell which form was close.
            let whole = constantTimeEqual(credentials, key)
            let pass = constantTimeEqual(password, key)
            return whole || pass
        default:
            return false
        }
    }

    /// Compares without an early exit, so the time taken does not reveal how much of the key matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0 && a.count == b.count
    }
}
