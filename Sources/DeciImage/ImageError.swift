/// Errors from reading, writing and converting images. Messages name the file (when there is one)
/// and say what is wrong with it.
public enum ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened, read, written or renamed.
    case io(path: String, reason: String)
    /// The file is not in a format this module reads (neither PNG nor JPEG signature).
    case unrecognizedFormat(path: String)
    /// The file claims to be PNG/JPEG but is damaged or truncated.
    case corrupt(path: String, format: String, reason: String)
    /// A valid file using a feature that is not supported.
    case unsupported(path: String, format: String, reason: String)
    /// Bad arguments from the caller (sizes, buffer lengths, text chunk keys).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .io(path, reason): return "\(path): \(reason)"
        case let .unrecognizedFormat(path): return "\(path): not a PNG or JPEG file"
        case let .corrupt(path, format, reason): return "\(path): damaged \(format) file: \(reason)"
        case let .unsupported(path, format, reason): return "\(path): unsupported \(format) file: \(reason)"
        case let .invalidArgument(message): return message
        }
    }
}
