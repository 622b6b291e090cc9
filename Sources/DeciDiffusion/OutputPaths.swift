// Where a batch of images goes on disk: the CLI's `--output` rules, kept in the library so every
// front end names files the same way.
import Foundation

/// An output location that cannot be used; the message names it and says why.
public struct OutputError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

public enum OutputPaths {
    /// The files for `count` images: `output` ending in `/` or naming an existing folder gives
    /// `<folder>/<seed>-<i>.png` (i from 0, the folder created if missing); otherwise `output` must
    /// be a `.png` file in an existing folder, used as is for one image and numbered `x-1.png`,
    /// `x-2.png`... for a batch.
    public static func resolve(_ output: String, count: Int, seed: UInt64) throws(OutputError) -> [String] {
        guard count >= 0 else { throw OutputError("count: \(count) images is negative") }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: output, isDirectory: &isDir)
        if output.hasSuffix("/") || (exists && isDir.boolValue) {
            do {
                try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
            } catch {
                throw OutputError("--output \(output): cannot create the folder: \(error.localizedDescription)")
            }
            return (0..<count).map { URL(fileURLWithPath: output).appendingPathComponent("\(seed)-\($0).png").path }
        }
        guard output.lowercased().hasSuffix(".png") else { throw OutputError("--output \(output): give a .png file or a folder ending in /") }
        let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
        guard fm.fileExists(atPath: parent) else { throw OutputError("--output \(output): folder \(parent) does not exist") }
        if count <= 1 { return count == 1 ? [output] : [] }
        let stem = String(output.dropLast(4))
        return (1...count).map { "\(stem)-\($0).png" }
    }
}
