import DeciJSON
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects named tensors and writes them as a `.safetensors` file, atomically (a temporary file in
/// the destination folder, then a rename), for tests, demo models and debugging dumps.
///
/// The layout matches the reference writer (the Python `safetensors` package) byte for byte:
/// `__metadata__` first, then tensors ordered by decreasing dtype alignment and then by name (byte
/// order), packed back to back; compact JSON with serde_json's string escaping; the header padded
/// with spaces to a multiple of 8 bytes. The reference writes `__metadata__` entries in hash order,
/// so files with two or more metadata entries differ from it only in that order (this writer sorts
/// them by key).
///
/// Holds all tensor bytes in memory until ``write(to:)``.
public struct SafeTensorsWriter: Sendable {
    struct Entry: Sendable {
        var name: String
        var dtype: WeightDType
        var shape: [Int]
        var bytes: [UInt8]
    }

    private var entries: [Entry] = []
    private var names = Set<String>()
    /// Written as `__metadata__` when non-nil (an empty map is written as `{}`).
    public var metadata: [String: String]?

    public init(metadata: [String: String]? = nil) {
        self.metadata = metadata
    }

    /// Names added so far, in insertion order.
    public var tensorNames: [String] { entries.map(\.name) }

    /// Adds a tensor from its stored bytes (little-endian, row-major); the byte count must equal
    /// `product(shape) * dtype size`.
    public mutating func add(_ name: String, dtype: WeightDType, shape: [Int], bytes: [UInt8]) throws(WeightsError) {
        func bad(_ problem: String) -> WeightsError {
            WeightsError(.invalidWriterInput, file: "SafeTensorsWriter", key: name, problem)
        }
        guard name != "__metadata__" else { throw bad("the name __metadata__ is reserved") }
        guard !names.contains(name) else { throw bad("added twice") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("shape \(shape) has a negative dimension") }
        var elements = 1
        for d in shape {
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw bad("shape \(shape) overflows") }
            elements = p
        }
        let (bits, o) = elements.multipliedReportingOverflow(by: dtype.bitSize)
        guard !o, bits % 8 == 0 else { throw bad("\(dtype) \(shape) is not a whole number of bytes") }
        guard bytes.count == bits / 8 else {
            throw bad("\(bytes.count) bytes given but \(dtype) \(shape) needs \(bits / 8)")
        }
        names.insert(name)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    /// Adds a copy of a tensor read from another file (under `name`, default its own name).
    public mutating func add(_ tensor: WeightTensor, as name: String? = nil) throws(WeightsError) {
        try add(name ?? tensor.name, dtype: tensor.dtype, shape: tensor.shape, bytes: tensor.bytes())
    }

    /// Adds f32 values stored as `dtype` (F32, F16 or BF16; rounded to nearest even).
    public mutating func add(_ name: String, floats: [Float], shape: [Int], as dtype: WeightDType = .F32) throws(WeightsError) {
        var bytes: [UInt8] = []
        switch dtype {
        case .F32:
            bytes.reserveCapacity(floats.count * 4)
            for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .F16:
            bytes.reserveCapacity(floats.count * 2)
            for f in floats { withUnsafeBytes(of: WeightConversion.halfBits(from: f).littleEndian) { bytes.append(contentsOf: $0) } }
        case .BF16:
            bytes.reserveCapacity(floats.count * 2)
            for f in floats { withUnsafeBytes(of: WeightConversion.bfloat16Bits(from: f).littleEndian) { bytes.append(contentsOf: $0) } }
        default:
            throw WeightsError(.invalidWriterInput, file: "SafeTensorsWriter", key: name, "cannot store floats as \(dtype) (use F32, F16 or BF16)")
        }
        try add(name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Adds integers stored as I64 (or I32 when `dtype` is `.I32`; values must fit).
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int], as dtype: WeightDType = .I64) throws(WeightsError) {
        var bytes: [UInt8] = []
        switch dtype {
        case .I64:
            for v in int64s { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        case .I32:
            for v in int64s {
                guard let v32 = Int32(exactly: v) else {
                    throw WeightsError(.invalidWriterInput, file: "SafeTensorsWriter", key: name, "value \(v) does not fit in I32")
                }
                withUnsafeBytes(of: v32.littleEndian) { bytes.append(contentsOf: $0) }
            }
        default:
            throw WeightsError(.invalidWriterInput, file: "SafeTensorsWriter", key: name, "cannot store integers as \(dtype) (use I64 or I32)")
        }
        try add(name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Entries in file order.
    private var ordered: [Entry] {
        entries.sorted { a, b in
            if a.dtype.alignmentRank != b.dtype.alignmentRank { return a.dtype.alignmentRank > b.dtype.alignmentRank }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The header JSON, padded with spaces to a multiple of 8 bytes (without the length prefix).
    public func headerBytes() -> [UInt8] {
        var json = "{"
        var first = true
        if let metadata {
            json += jsonQuoted("__metadata__") + ":{"
            json += metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                .map { jsonQuoted($0) + ":" + jsonQuoted(metadata[$0] ?? "") }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for e in ordered {
            if !first { json += "," }
            first = false
            let shape = e.shape.map(String.init).joined(separator: ",")
            json += jsonQuoted(e.name) + ":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}"
            offset += e.bytes.count
        }
        json += "}"
        var bytes = Array(json.utf8)
        let padded = (bytes.count + 7) / 8 * 8
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padded - bytes.count))
        return bytes
    }

    /// The whole file image.
    public func serialized() -> [UInt8] {
        let header = headerBytes()
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + entries.reduce(0) { $0 + $1.bytes.count })
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for e in ordered { out.append(contentsOf: e.bytes) }
        return out
    }

    /// Writes the file at `path` atomically: readers see either the old file or the complete new
    /// one, never a partial write. (A reader that has the old file mapped keeps its old contents.)
    public func write(to path: String) throws(WeightsError) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let temp = URL(fileURLWithPath: folder)
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightsError(.io, file: path, "cannot create temporary file \(temp): \(String(cString: strerror(errno)))")
        }
        var failure: String?
        func writeAll(_ bytes: [UInt8]) {
            guard failure == nil else { return }
            bytes.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = posixWrite(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        failure = "write failed: \(String(cString: strerror(errno)))"
                        return
                    }
                    done += n
                }
            }
        }
        let header = headerBytes()
        var prefix: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { prefix.append(contentsOf: $0) }
        writeAll(prefix)
        writeAll(header)
        for e in ordered where !e.bytes.isEmpty { writeAll(e.bytes) }
        if failure == nil, fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        if close(fd) != 0, failure == nil { failure = "close failed: \(String(cString: strerror(errno)))" }
        if failure == nil, rename(temp, path) != 0 { failure = "rename from \(temp) failed: \(String(cString: strerror(errno)))" }
        if let failure {
            unlink(temp)
            throw WeightsError(.io, file: path, failure)
        }
    }
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
