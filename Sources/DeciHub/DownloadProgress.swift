import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Renders download events: on a terminal one self-updating bar (bytes, percentage, rate, current
/// file), redrawn at most ten times a second; otherwise (logs, CI) one plain line per file.
public final class DownloadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let interactive: Bool
    private let write: @Sendable (String) -> Void
    private var total: Int64 = 0
    private var done: Int64 = 0
    private var current = ""
    private var fileStart = Date()
    private var fileBytes: Int64 = 0
    private var fileSize: Int64 = 0
    private var lastDraw = Date.distantPast

    /// - Parameter interactive: draw the bar (a terminal); nil asks isatty on standard error.
    public init(interactive: Bool? = nil, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.interactive = interactive ?? (isatty(STDERR_FILENO) == 1)
        self.write = write
    }

    public func handle(_ event: DownloadEvent) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .planned(let commit, let files, let bytes):
            total = bytes
            write(files == 0 ? "all files of commit \(commit.prefix(12)) are in the cache\n"
                             : "commit \(commit.prefix(12)): \(files) file\(files == 1 ? "" : "s"), \(Self.bytes(bytes)) to fetch\n")
        case .fileStarted(let path, let size, let resumed):
            current = path
            fileStart = Date()
            fileBytes = 0
            fileSize = size - resumed
            done += resumed
            if !interactive { write("fetching \(path) (\(Self.bytes(size))\(resumed > 0 ? ", resuming at \(Self.bytes(resumed))" : ""))\n") }
        case .bytes(let n):
            done += Int64(n)
            fileBytes += Int64(n)
            if interactive, Date().timeIntervalSince(lastDraw) >= 0.1 { draw() }
        case .fileFinished(let path):
            if interactive { draw() } else {
                let seconds = max(Date().timeIntervalSince(fileStart), 1e-3)
                write("done \(path): \(Self.bytes(fileBytes)) in \(String(format: "%.1f", seconds)) s (\(Self.bytes(Int64(Double(fileBytes) / seconds)))/s)\n")
            }
        case .note(let text):
            write((interactive ? "\r\u{1B}[K" : "") + "note: \(text)\n")
        }
    }

    /// Ends the bar's line.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        if interactive, total > 0 { draw(); write("\n") }
    }

    private func draw() {
        lastDraw = Date()
        let fraction = total > 0 ? min(Double(done) / Double(total), 1) : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let rate = Self.bytes(Int64(Double(fileBytes) / max(Date().timeIntervalSince(fileStart), 1e-3)))
        write("\r\u{1B}[K[\(bar)] \(String(format: "%3d", Int(fraction * 100)))% \(Self.bytes(done)) / \(Self.bytes(total))  \(rate)/s  \(current)")
    }

    /// 1.2 GB, 340.5 MB, 12.0 kB (decimal units, as the Hub shows sizes).
    public static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}
