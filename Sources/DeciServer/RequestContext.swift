// The request context every route and middleware of the server sees.
import Foundation
import Hummingbird
import Logging
import NIOCore

/// Hummingbird's core storage plus what the middleware learns about a request.
public struct DeciRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``APIKeyMiddleware`` once the key matched (always false when no key is configured).
    public var authenticated = false
    /// The client's connection: synchronous APIs cancel their job when it closes first.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies are collected by the routes themselves with the configured limit (``ServerSettings/maxBodyBytes``).
    public var maxUploadSize: Int { 32 << 20 }
}
