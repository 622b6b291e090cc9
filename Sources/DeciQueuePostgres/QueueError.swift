import DeciDiffusion

/// Why a queue operation failed.
public enum QueueError: Error, CustomStringConvertible, Equatable {
    /// The database cannot be reached now (connection refused, lost, or backing off before the next try).
    case unavailable(String)
    /// The database refused a statement (a bug, or a schema another version of the program made).
    case server(String)
    /// A stored value does not decode.
    case corrupt(String)
    /// A `postgresql://` URL that cannot be used; the message names the part.
    case badURL(String)

    public var description: String {
        switch self {
        case let .unavailable(m): "database unavailable: \(m)"
        case let .server(m): "database error: \(m)"
        case let .corrupt(m): "stored job data is corrupt: \(m)"
        case let .badURL(m): "--queue: \(m)"
        }
    }

    /// What an HTTP front end answers: 503 for every database trouble, so clients retry.
    var serviceError: ServiceError {
        switch self {
        case let .unavailable(m): .unavailable(m)
        default: .unavailable(description)
        }
    }
}
