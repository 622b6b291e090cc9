// What `decidiffusion serve` was asked for, independent of the command line: where to listen, who
// may call, and how large a request may be. Checked once (``ServerSettings/validate()``) before the
// server binds.
import Foundation

/// The HTTP server's settings (the generation limits live in the service's `ServiceConfiguration`).
public struct ServerSettings: Sendable, Equatable {
    /// Address to bind; loopback by default so a fresh start is never reachable from the network.
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks a free one (the real one is reported once listening).
    public var port: Int = 7860
    /// When set, every route but `/healthz` and `/` needs `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// The one origin CORS is enabled for; nil: no CORS headers at all.
    public var corsOrigin: String?
    /// Largest request body accepted (HTTP 413 beyond it).
    public var maxBodyBytes: Int = 32 << 20
    /// Allows binding a non-loopback address without an API key.
    public var allowUnauthenticated = false
    /// Logs one line per request (swift-log, info level).
    public var logRequests = true

    public init(host: String = "127.0.0.1", port: Int = 7860, apiKey: String? = nil, corsOrigin: String? = nil,
                maxBodyBytes: Int = 32 << 20, allowUnauthenticated: Bool = false, logRequests: Bool = true) {
        self.host = host
        self.port = port
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.corsOrigin = corsOrigin.flatMap { $0.isEmpty ? nil : $0 }
        self.maxBodyBytes = maxBodyBytes
        self.allowUnauthenticated = allowUnauthenticated
        self.logRequests = logRequests
    }

    /// Whether `host` only accepts connections from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Refuses settings that would be unsafe or cannot work: a network-reachable address without a
    /// key (unless explicitly allowed), a port outside 0...65535, a non-positive body limit, a CORS
    /// origin that is not `scheme://host[:port]`.
    public func validate() throws(SettingsError) {
        guard !host.isEmpty else { throw SettingsError("--host: an address is required") }
        guard (0...65535).contains(port) else { throw SettingsError("--port: \(port) is outside 0...65535") }
        guard maxBodyBytes > 0 else { throw SettingsError("--max-body-mb: the body limit must be positive") }
        if !Self.isLoopback(host) && apiKey == nil && !allowUnauthenticated {
            throw SettingsError("--host \(host): refusing to listen on a non-loopback address without an API key; pass --api-key (or set DECI_API_KEY), or --allow-unauthenticated to accept anyone who can reach the port")
        }
        if let origin = corsOrigin {
            // One named origin only: "*" would let any web page drive the server.
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.path.isEmpty, url.query == nil else {
                throw SettingsError("--cors-origin: \"\(origin)\" is not an origin such as https://example.com or http://localhost:3000")
            }
        }
    }
}

/// Why the server's settings were refused; the message names the option.
public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}
