import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where one tensor lives in a safetensors file, as validated from the header.
public struct TensorInfo: Sendable, Equatable {
    public let dtype: WeightDType
    public let shape: [Int]
    /// Byte range relative to the start of the data section (after the header).
    public let dataOffsets: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped `.safetensors` file whose header has been fully validated.
///
/// Opening validates everything before exposing anything: the 8-byte little-endian header length
/// (at most 100,000,000 bytes, as the reference implementation allows, and inside the file), a UTF-8
/// JSON object header without duplicate keys, an optional `__metadata__` string map, and per tensor
/// a known dtype, a shape of non-negative integers, `data_offsets` `[begin, end]` relative to the
/// data section with `end - begin == product(shape) * dtype size` (overflow-checked). Like the
/// reference reader it then requires the tensors to tile the data section exactly: no overlap, no
/// gap, nothing after the last tensor, and nothing missing (a truncated file).
///
/// The file is mapped read-only and private; the mapping lives as long as this object, and every
/// ``WeightTensor`` holds a reference to it. Modifying or truncating the file on disk while it is
/// mapped is undefined (truncation raises SIGBUS on access), as for any memory-mapped reader.
///
/// Thread safety: immutable after `init`; share it freely across threads.
public final class SafeTensorsFile: @unchecked Sendable {
    /// The path as given to `init`; errors name it.
    public let path: String
    /// The `__metadata__` map, if the header has one.
    public let metadata: [String: String]?
    /// Header length in bytes (the value of the 8-byte prefix).
    public let headerByteCount: Int
    /// Size of the data section in bytes.
    public let dataByteCount: Int
    /// Tensor keys in data-offset order.
    public let keys: [String]
    /// Validated tensor locations by key.
    public let infos: [String: TensorInfo]

    private let mapping: UnsafeMutableRawPointer
    private let mappingLength: Int
    private let dataStart: UnsafeRawPointer

    /// The reference implementation's header size bound.
    public static let maxHeaderByteCount = 100_000_000

    /// Opens, maps and validates `url` (a file URL).
    public convenience init(url: URL) throws(WeightsError) {
        try self.init(path: url.path)
    }

    /// Opens, maps and validates the file at `path`.
    public init(path: String) throws(WeightsError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw WeightsError(.io, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw WeightsError(.io, file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw WeightsError(.io, file: path, "not a regular file")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw WeightsError(.fileTooSmall, file: path,
                               "file is \(size) bytes, shorter than the 8-byte header length prefix")
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw WeightsError(.io, file: path, "cannot memory-map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        do {
            let layout = try Self.validate(UnsafeRawBufferPointer(start: base, count: size), path: path)
            mapping = base
            mappingLength = size
            headerByteCount = layout.headerByteCount
            dataByteCount = size - 8 - layout.headerByteCount
            dataStart = UnsafeRawPointer(base) + 8 + layout.headerByteCount
            metadata = layout.metadata
            keys = layout.keys
            infos = layout.infos
        } catch {
            munmap(base, size)
            throw error
        }
    }

    deinit {
        munmap(mapping, mappingLength)
    }

    /// Whether the file holds a tensor named `key`.
    public func contains(_ key: String) -> Bool { infos[key] != nil }

    /// A view of the tensor named `key`, or a `.missingTensor` error.
    public func tensor(_ key: String) throws(WeightsError) -> WeightTensor {
        guard let info = infos[key] else {
            throw WeightsError(.missingTensor, file: path, key: key, "not in this file (\(keys.count) tensors)")
        }
        return WeightTensor(name: key, info: info, file: self)
    }

    /// Views of every tensor, in data-offset order.
    public var tensors: [WeightTensor] {
        keys.compactMap { key in infos[key].map { WeightTensor(name: key, info: $0, file: self) } }
    }

    /// Drops this process's resident copy of a tensor's pages (the page cache keeps them; a later
    /// read faults them back in). The mapping is private and read-only, so nothing is lost: loading
    /// calls this once a tensor is converted, so the mapped file does not count twice in peak RSS.
    func releaseResidentPages(of info: TensorInfo) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: dataStart) + info.dataOffsets.lowerBound
        let end = Int(bitPattern: dataStart) + info.dataOffsets.upperBound
        let alignedStart = start / page * page
        let alignedEnd = (end + page - 1) / page * page
        guard alignedEnd > alignedStart, let p = UnsafeMutableRawPointer(bitPattern: alignedStart) else { return }
        _ = withExtendedLifetime(self) { madvise(p, alignedEnd - alignedStart, MADV_DONTNEED) }
    }

    func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: dataStart + info.dataOffsets.lowerBound, count: info.dataOffsets.count)
    }

    // MARK: Validation

    struct Layout {
        var headerByteCount: Int
        var metadata: [String: String]?
        var keys: [String]
        var infos: [String: TensorInfo]
    }

    /// Validates a whole file image; used by `init` and by tests on in-memory bytes.
    static func validate(_ file: UnsafeRawBufferPointer, path: String) throws(WeightsError) -> Layout {
        guard file.count >= 8 else {
            throw WeightsError(.fileTooSmall, file: path,
                               "file is \(file.count) bytes, shorter than the 8-byte header length prefix")
        }
        let n = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard n <= UInt64(maxHeaderByteCount) else {
            throw WeightsError(.headerLength, file: path,
                               "header length \(n) exceeds the \(maxHeaderByteCount)-byte limit (not a safetensors file?)")
        }
        let headerLength = Int(n)
        guard headerLength <= file.count - 8 else {
            throw WeightsError(.headerLength, file: path,
                               "header length \(headerLength) runs past the end of the \(file.count)-byte file (truncated?)")
        }
        let header = UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)])
        guard isValidUTF8(header) else {
            throw WeightsError(.headerNotUTF8, file: path, "header is not valid UTF-8")
        }
        let json: JSONValue
        do {
            json = try parseJSON(header)
        } catch {
            throw WeightsError(.headerNotJSON, file: path,
                               "header is not valid JSON at byte \(error.offset) of \(headerLength): \(error.message)")
        }
        guard case .object(let members) = json else {
            throw WeightsError(.invalidHeader, file: path, "header is a JSON \(json.typeName), not an object")
        }
        let dataLength = file.count - 8 - headerLength
        var metadata: [String: String]?
        var entries: [(key: String, info: TensorInfo)] = []
        entries.reserveCapacity(members.count)
        for member in members {
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member.value, path: path)
            } else {
                entries.append((member.key, try parseEntry(member.key, member.value, path: path)))
            }
        }
        try checkLayout(entries, dataLength: dataLength, path: path)
        var infos: [String: TensorInfo] = [:]
        infos.reserveCapacity(entries.count)
        for e in entries { infos[e.key] = e.info }
        let ordered = entries.sorted { ($0.info.dataOffsets.lowerBound, $0.info.dataOffsets.upperBound, $0.key)
            < ($1.info.dataOffsets.lowerBound, $1.info.dataOffsets.upperBound, $1.key) }
        return Layout(headerByteCount: headerLength, metadata: metadata, keys: ordered.map(\.key), infos: infos)
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws(WeightsError) -> [String: String] {
        guard case .object(let members) = value else {
            throw WeightsError(.invalidHeader, file: path, "__metadata__ is a JSON \(value.typeName), not an object of strings")
        }
        var map: [String: String] = [:]
        for m in members {
            guard case .string(let s) = m.value else {
                throw WeightsError(.invalidHeader, file: path,
                                   "__metadata__ entry '\(m.key)' is a JSON \(m.value.typeName), not a string")
            }
            map[m.key] = s
        }
        return map
    }

    private static func parseEntry(_ key: String, _ value: JSONValue, path: String) throws(WeightsError) -> TensorInfo {
        guard case .object(let fields) = value else {
            throw WeightsError(.invalidHeader, file: path, key: key, "entry is a JSON \(value.typeName), not an object")
        }
        func field(_ name: String) throws(WeightsError) -> JSONValue {
            guard let f = fields.first(where: { $0.key == name }) else {
                throw WeightsError(.invalidHeader, file: path, key: key, "entry has no '\(name)'")
            }
            return f.value
        }
        // dtype
        let dtypeValue = try field("dtype")
        guard case .string(let dtypeName) = dtypeValue else {
            throw WeightsError(.invalidHeader, file: path, key: key, "dtype is a JSON \(dtypeValue.typeName), not a string")
        }
        guard let dtype = WeightDType(rawValue: dtypeName) else {
            throw WeightsError(.unknownDType, file: path, key: key, "unknown dtype \"\(dtypeName)\"")
        }
        // shape
        let shapeValue = try field("shape")
        guard case .array(let dims) = shapeValue else {
            throw WeightsError(.invalidShape, file: path, key: key, "shape is a JSON \(shapeValue.typeName), not an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for d in dims {
            guard let u = d.exactUInt64, u <= UInt64(Int.max) else {
                throw WeightsError(.invalidShape, file: path, key: key,
                                   "shape \(JSONValue.array(dims).compactText) has an entry that is not a non-negative integer: \(d.compactText)")
            }
            shape.append(Int(u))
        }
        // data_offsets
        let offsetsValue = try field("data_offsets")
        guard case .array(let offs) = offsetsValue, offs.count == 2,
              let b = offs[0].exactUInt64, let e = offs[1].exactUInt64,
              b <= UInt64(Int.max), e <= UInt64(Int.max) else {
            throw WeightsError(.invalidOffsets, file: path, key: key,
                               "data_offsets \(offsetsValue.compactText) is not a pair of non-negative integers")
        }
        let begin = Int(b), end = Int(e)
        guard begin <= end else {
            throw WeightsError(.invalidOffsets, file: path, key: key, "data_offsets [\(begin), \(end)] end before they begin")
        }
        // byte length, overflow-checked
        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw WeightsError(.invalidShape, file: path, key: key, "shape \(shape) has more elements than fit in an Int")
            }
            elements = p
        }
        let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitSize)
        guard !overflow else {
            throw WeightsError(.invalidShape, file: path, key: key, "\(dtype) \(shape) has more bytes than fit in an Int")
        }
        guard bits % 8 == 0 else {
            throw WeightsError(.invalidShape, file: path, key: key, "\(dtype) \(shape) is \(bits) bits, not a whole number of bytes")
        }
        let needed = bits / 8
        guard end - begin == needed else {
            throw WeightsError(.byteLengthMismatch, file: path, key: key,
                               "data_offsets [\(begin), \(end)] give \(end - begin) bytes but \(dtype) \(shape) needs \(needed)")
        }
        return TensorInfo(dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    private static func checkLayout(_ entries: [(key: String, info: TensorInfo)], dataLength: Int,
                                    path: String) throws(WeightsError) {
        let sorted = entries.sorted { ($0.info.dataOffsets.lowerBound, $0.info.dataOffsets.upperBound, $0.key)
            < ($1.info.dataOffsets.lowerBound, $1.info.dataOffsets.upperBound, $1.key) }
        // The first tiling problem, if any; reported after the bounds check below decides whether a
        // too-short data section is a truncated file (tensors tile it) or a bad offset.
        var tilingError: WeightsError?
        var covered = 0
        var coveredBy: (key: String, range: Range<Int>)?
        for (key, info) in sorted {
            let r = info.dataOffsets
            if tilingError == nil {
                if r.lowerBound < covered, let prev = coveredBy {
                    tilingError = WeightsError(.overlap, file: path, key: key,
                        "data_offsets [\(r.lowerBound), \(r.upperBound)] overlap tensor '\(prev.key)' at [\(prev.range.lowerBound), \(prev.range.upperBound)]")
                } else if r.lowerBound > covered {
                    let after = coveredBy.map { "after tensor '\($0.key)'" } ?? "at the start of the data section"
                    tilingError = WeightsError(.gap, file: path, key: key,
                        "data_offsets [\(r.lowerBound), \(r.upperBound)] leave a gap of \(r.lowerBound - covered) bytes \(after) (bytes \(covered)..<\(r.lowerBound) belong to no tensor)")
                }
            }
            if r.upperBound > covered || coveredBy == nil {
                covered = max(covered, r.upperBound)
                coveredBy = (key, r)
            }
        }
        if covered > dataLength {
            if tilingError == nil {
                let first = sorted.first { $0.info.dataOffsets.upperBound > dataLength }
                throw WeightsError(.truncated, file: path, key: first?.key,
                    "file truncated: the header describes \(covered) data bytes but the file holds \(dataLength) after the header")
            }
            if let bad = sorted.first(where: { $0.info.dataOffsets.upperBound > dataLength }) {
                let r = bad.info.dataOffsets
                throw WeightsError(.invalidOffsets, file: path, key: bad.key,
                    "data_offsets [\(r.lowerBound), \(r.upperBound)] run past the end of the \(dataLength)-byte data section")
            }
        }
        if let tilingError { throw tilingError }
        if covered < dataLength {
            let after = coveredBy.map { "tensor '\($0.key)'" } ?? "the header (no tensors)"
            throw WeightsError(.gap, file: path,
                "\(dataLength - covered) bytes after \(after) belong to no tensor (data section is \(dataLength) bytes, tensors cover \(covered))")
        }
    }
}
