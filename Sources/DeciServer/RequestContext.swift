// The request context every route and middleware of the server sees.
import Foundation
import Hummingbird
import Logging

/// Hummingbird's core storage plus what the middleware learns about a request.
public struct DeciRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``APIKeyMiddleware`` once the bearer key matched (always false when no key is configured).
    public var authenticated = false

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Bodies are collected by the routes themselves with the configured limit (``ServerSettings/maxBodyBytes``).
    public var maxUploadSize: Int { 32 << 20 }
}
