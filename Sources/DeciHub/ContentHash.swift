import Crypto
import Foundation

/// The hash a Hub ETag names: sha256 of the bytes for LFS files (64 hex digits), the git blob id
/// `sha1("blob <size>\0" + bytes)` for files kept in git itself (40 hex digits).
public struct ContentHash {
    private enum State { case sha256(SHA256), gitSHA1(Insecure.SHA1) }
    private var state: State
    public let expected: String

    public init(etag: String, size: Int64) {
        expected = etag
        if etag.count == 64 {
            state = .sha256(SHA256())
        } else {
            var sha1 = Insecure.SHA1()
            sha1.update(data: Data("blob \(size)\0".utf8))
            state = .gitSHA1(sha1)
        }
    }

    public var kind: String { expected.count == 64 ? "sha256" : "git sha1" }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var h): h.update(bufferPointer: bytes); state = .sha256(h)
        case .gitSHA1(var h): h.update(bufferPointer: bytes); state = .gitSHA1(h)
        }
    }

    public func hexDigest() -> String {
        let bytes: [UInt8]
        switch state {
        case .sha256(let h): bytes = Array(h.finalize())
        case .gitSHA1(let h): bytes = Array(h.finalize())
        }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The ETag the Hub gives `data`: its git blob id, or its sha256 when `lfs`.
    public static func etag(of data: Data, lfs: Bool) -> String {
        var hash = ContentHash(etag: lfs ? String(repeating: "0", count: 64) : String(repeating: "0", count: 40), size: Int64(data.count))
        data.withUnsafeBytes { hash.update($0) }
        return hash.hexDigest()
    }
}
