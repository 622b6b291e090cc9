#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic writes with POSIX calls, so that errors carry errno's wording and the
/// path rather than a framework's generic message.
enum FileIO {
    static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

    static func readAll(path: String) throws(ImageError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open: \(errnoText(errno))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, reason: "cannot stat: \(errnoText(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, reason: "not a regular file") }
        var bytes = [UInt8](repeating: 0, count: max(0, Int(st.st_size)))
        var filled = 0
        while true {
            if filled == bytes.count {
                // The file may have grown since fstat; keep reading until EOF.
                bytes.append(contentsOf: [UInt8](repeating: 0, count: max(4096, bytes.count / 2)))
            }
            let n = bytes.withUnsafeMutableBytes { buf in
                read(fd, buf.baseAddress! + filled, buf.count - filled)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, reason: "read failed: \(errnoText(errno))")
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// Writes `bytes` to `path` so that readers see either the old file or the complete new one:
    /// a temporary file in the same directory is written, flushed to disk, then renamed over `path`.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(ImageError) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw .io(path: path, reason: "path names a directory, not a file") }
        let tmp = "\(dir.isEmpty ? "" : dir)/.\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw .io(path: path, reason: "cannot create temporary file in \(dir.isEmpty ? "/" : dir): \(errnoText(errno))")
        }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { buf in write(fd, buf.baseAddress! + written, buf.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = errnoText(errno)
                close(fd)
                throw .io(path: path, reason: "write failed: \(reason)")
            }
            written += n
        }
        if fsync(fd) != 0 {
            let reason = errnoText(errno)
            close(fd)
            throw .io(path: path, reason: "fsync failed: \(reason)")
        }
        if close(fd) != 0 { throw .io(path: path, reason: "close failed: \(errnoText(errno))") }
        if rename(tmp, path) != 0 { throw .io(path: path, reason: "cannot rename into place: \(errnoText(errno))") }
        ok = true
        // Make the rename itself durable; failure here leaves a complete file, so it is not an error.
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}
