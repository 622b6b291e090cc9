// Bearer-key authentication for every route but the open ones (`/healthz`, and `/`, the page that
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
        guard let header = request.headers[.authorization], header.count > 7,
              header.prefix(7).lowercased() == "bearer ",
              Self.constantTimeEqual(Array(header.utf8.dropFirst(7)), key) else {
            throw APIError.unauthorized
        }
        var context = context
        context.authenticated = true
        return try await next(request, context)
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
