/// A read-only view of one tensor inside a memory-mapped safetensors file.
///
/// The view keeps its file (and so the mapping) alive. ``rawBytes`` points into the mapping and is
/// valid only while the view or its ``file`` is alive: keep the view around while using the pointer
/// (or use ``withRawBytes(_:)``). Copies and conversions never alias the mapping.
///
/// Thread safety: immutable; the underlying pages are read-only, so views may be read from any
/// number of threads at once.
public struct WeightTensor: @unchecked Sendable, CustomStringConvertible {
    /// The checkpoint key.
    public let name: String
    public let info: TensorInfo
    /// The file the tensor lives in; holding it keeps the mapping alive.
    public let file: SafeTensorsFile

    init(name: String, info: TensorInfo, file: SafeTensorsFile) {
        self.name = name
        self.info = info
        self.file = file
    }

    public var dtype: WeightDType { info.dtype }
    public var shape: [Int] { info.shape }
    public var elementCount: Int { info.elementCount }
    public var byteCount: Int { info.dataOffsets.count }

    /// The stored bytes, inside the mapping (see the type's lifetime note).
    public var rawBytes: UnsafeRawBufferPointer { file.bytes(of: info) }

    public var description: String { "\(name): \(dtype) \(shape)" }

    /// Calls `body` with the stored bytes while guaranteeing the mapping stays alive.
    public func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(file) { try body(file.bytes(of: info)) }
    }

    /// Lets the operating system drop the process's resident copy of the stored bytes (they stay
    /// readable; see `SafeTensorsFile.releaseResidentPages`).
    public func releaseResidentPages() { file.releaseResidentPages(of: info) }

    /// A copy of the stored bytes.
    public func bytes() -> [UInt8] { withRawBytes { Array($0) } }

    private func requireFloat(_ target: String) throws(WeightsError) {
        guard dtype.isConvertibleToFloat else {
            throw WeightsError(.unsupportedConversion, file: file.path, key: name,
                               "cannot convert \(dtype) to \(target) (supported: F32, F16, BF16, F64)")
        }
    }

    private func requireCount(_ count: Int, _ target: String) throws(WeightsError) {
        guard count == elementCount else {
            throw WeightsError(.bufferSize, file: file.path, key: name,
                               "destination holds \(count) \(target) values but \(dtype) \(shape) has \(elementCount)")
        }
    }

    /// A zero-copy view of rows `range` of the first dimension (e.g. the value and gate halves of
    /// a GEGLU projection, or q/k/v of a fused weight). The view is named `name[lo..<hi]`.
    public func slicingFirstDimension(_ range: Range<Int>) throws(WeightsError) -> WeightTensor {
        guard let rows = shape.first, dtype.byteSize != nil, range.lowerBound >= 0, range.upperBound <= rows else {
            throw WeightsError(.invalidShape, file: file.path, key: name,
                               "cannot take rows \(range.lowerBound)..<\(range.upperBound) of \(dtype) \(shape)")
        }
        let rowBytes = rows == 0 ? 0 : byteCount / rows
        let begin = info.dataOffsets.lowerBound + range.lowerBound * rowBytes
        let sub = TensorInfo(dtype: dtype, shape: [range.count] + shape.dropFirst(),
                             dataOffsets: begin..<(begin + range.count * rowBytes))
        return WeightTensor(name: "\(name)[\(range.lowerBound)..<\(range.upperBound)]", info: sub, file: file)
    }

    // MARK: f32

    /// The elements as f32 (exact from F32/F16/BF16, nearest from F64).
    public func floats() throws(WeightsError) -> [Float] {
        try converted("Float", WeightConversion.convertToFloat)
    }

    /// Converts the elements to f32 into `destination`, which must have room for ``elementCount``
    /// values (the caller's aligned buffer, so no intermediate copy is made).
    public func convertFloats(into destination: UnsafeMutablePointer<Float>) throws(WeightsError) {
        try convert(into: destination, "Float", WeightConversion.convertToFloat)
    }

    /// Converts the elements to f32 into `destination`, whose count must equal ``elementCount``.
    public func convertFloats(into destination: UnsafeMutableBufferPointer<Float>) throws(WeightsError) {
        try convert(into: destination, "Float", WeightConversion.convertToFloat)
    }

    // MARK: bf16

    /// The elements as bfloat16 bit patterns (copied from BF16, rounded to nearest even from
    /// F32/F16/F64).
    public func bfloat16Bits() throws(WeightsError) -> [UInt16] {
        try converted("BF16", WeightConversion.convertToBFloat16)
    }

    /// Converts the elements to bfloat16 bits into `destination`, which must have room for
    /// ``elementCount`` values.
    public func convertBFloat16Bits(into destination: UnsafeMutablePointer<UInt16>) throws(WeightsError) {
        try convert(into: destination, "BF16", WeightConversion.convertToBFloat16)
    }

    /// Converts the elements to bfloat16 bits into `destination`, whose count must equal
    /// ``elementCount``.
    public func convertBFloat16Bits(into destination: UnsafeMutableBufferPointer<UInt16>) throws(WeightsError) {
        try convert(into: destination, "BF16", WeightConversion.convertToBFloat16)
    }

    /// One of ``WeightConversion``'s bulk conversions: source, its dtype, destination, count.
    private typealias BulkConversion<T> = (UnsafeRawPointer, WeightDType, UnsafeMutablePointer<T>, Int) -> Void

    private func converted<T>(_ target: String, _ conversion: BulkConversion<T>) throws(WeightsError) -> [T] {
        try requireFloat(target)
        return [T](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            if let base = buffer.baseAddress { convertUnchecked(into: base, conversion) }
            initialized = elementCount
        }
    }

    private func convert<T>(into destination: UnsafeMutablePointer<T>, _ target: String,
                            _ conversion: BulkConversion<T>) throws(WeightsError) {
        try requireFloat(target)
        convertUnchecked(into: destination, conversion)
    }

    private func convert<T>(into destination: UnsafeMutableBufferPointer<T>, _ target: String,
                            _ conversion: BulkConversion<T>) throws(WeightsError) {
        try requireCount(destination.count, target)
        guard let base = destination.baseAddress else { return try requireFloat(target) }
        try convert(into: base, target, conversion)
    }

    /// After `requireFloat`: a dtype the conversions take, and room for ``elementCount`` values.
    private func convertUnchecked<T>(into destination: UnsafeMutablePointer<T>, _ conversion: BulkConversion<T>) {
        guard elementCount > 0 else { return }
        withRawBytes { raw in
            if let source = raw.baseAddress { conversion(source, dtype, destination, elementCount) }
        }
    }

    // MARK: integers

    /// The elements as Int64, for integer buffers such as `position_ids` (BOOL reads as 0/1; U64
    /// values above Int64.max are an error).
    public func int64s() throws(WeightsError) -> [Int64] {
        guard dtype.isInteger else {
            throw WeightsError(.unsupportedConversion, file: file.path, key: name, "cannot read \(dtype) as integers")
        }
        let n = elementCount
        let values: [Int64] = withRawBytes { raw in
            (0..<n).map { i -> Int64 in
                switch dtype {
                case .BOOL: raw.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
                case .U8: Int64(raw.load(fromByteOffset: i, as: UInt8.self))
                case .I8: Int64(raw.load(fromByteOffset: i, as: Int8.self))
                case .I16: Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                case .U16: Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                case .I32: Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .U32: Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                case .I64: Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                case .U64: Int64(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
                default: 0
                }
            }
        }
        if dtype == .U64, let bad = values.firstIndex(where: { $0 < 0 }) {
            throw WeightsError(.unsupportedConversion, file: file.path, key: name,
                               "U64 element \(bad) exceeds Int64.max")
        }
        return values
    }
}
