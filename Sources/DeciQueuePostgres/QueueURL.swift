// `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?host=/unix/socket/dir]`, as libpq spells it.
import Foundation
import PostgresNIO

public struct QueueURL: Sendable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// A Unix socket directory (libpq's `?host=/dir`); the socket is `DIR/.s.PGSQL.PORT`.
    public var socketDirectory: String?

    public init(_ text: String) throws(QueueError) {
        guard let c = URLComponents(string: text), let scheme = c.scheme, ["postgresql", "postgres"].contains(scheme) else {
            throw .badURL("\"\(text)\" is not a postgresql://USER@HOST/DB URL")
        }
        guard let user = c.user, !user.isEmpty else { throw .badURL("\"\(text)\": the user is missing (postgresql://USER@HOST/DB)") }
        let db = String(c.path.drop { $0 == "/" })
        guard !db.isEmpty else { throw .badURL("\"\(text)\": the database name is missing (postgresql://USER@HOST/DB)") }
        (self.user, password, database) = (user, c.password, db)
        host = c.host ?? "127.0.0.1"
        port = c.port ?? 5432
        guard (1...65535).contains(port) else { throw .badURL("\"\(text)\": port \(port) is out of range") }
        socketDirectory = c.queryItems?.first { $0.name == "host" }?.value.flatMap { $0.hasPrefix("/") ? $0 : nil }
        if host.isEmpty && socketDirectory == nil { host = "127.0.0.1" }
    }

    /// The URL without its password, for logs.
    public var description: String {
        "postgresql://\(user)@\(socketDirectory.map { "?host=\($0)" } ?? "\(host):\(port)")/\(database)"
    }

    var configuration: PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if let dir = socketDirectory {
            config = .init(unixSocketPath: "\(dir)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            // Plain TCP: the database is expected on a trusted network or loopback (see the README).
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        }
        // Fail fast while the database is down: an API call answers 503 within this.
        config.options.connectTimeout = .seconds(2)
        return config
    }
}
