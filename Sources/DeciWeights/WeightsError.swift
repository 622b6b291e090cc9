/// A problem found while reading, validating, looking up or writing checkpoint weights.
///
/// Every error names the file it concerns and, where one is involved, the tensor key, so a message
/// alone says what to fix: `model.safetensors: tensor 'conv_in.weight': data_offsets [0, 100] give
/// 100 bytes but F16 [320, 4, 3, 3] needs 23040`. Tests and callers branch on ``kind``.
public struct WeightsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, independent of the wording of ``message``.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The file could not be opened, sized, mapped, written or renamed.
        case io
        /// Shorter than the 8-byte header length prefix.
        case fileTooSmall
        /// The header length prefix exceeds the limit or the file.
        case headerLength
        /// The header bytes are not valid UTF-8.
        case headerNotUTF8
        /// The header is not well-formed JSON (or has duplicate keys).
        case headerNotJSON
        /// The header JSON is well-formed but not a valid safetensors header (wrong types,
        /// missing fields, a malformed `__metadata__`).
        case invalidHeader
        /// A dtype string this reader does not know.
        case unknownDType
        /// A shape entry that is not a non-negative integer, or an element count that overflows.
        case invalidShape
        /// `data_offsets` malformed, reversed, or outside the data section.
        case invalidOffsets
        /// `data_offsets` span a byte count different from shape x dtype size.
        case byteLengthMismatch
        /// Two tensors share bytes.
        case overlap
        /// Bytes between tensors, or after the last one, that no tensor covers (the header lies or
        /// the file was appended to).
        case gap
        /// The data section is shorter than the header claims (truncated file).
        case truncated
        /// The tensor's dtype cannot be converted to the requested element type.
        case unsupportedConversion
        /// A destination buffer of the wrong size.
        case bufferSize
        /// A key the loader asked for is not in the checkpoint.
        case missingTensor
        /// A tensor whose shape differs from what the loader expects.
        case shapeMismatch
        /// Tensors in the checkpoint that no loader consumed.
        case unusedTensors
        /// The same key appears in two files of one store.
        case duplicateKey
        /// A sharded checkpoint's index is malformed.
        case invalidIndex
        /// A shard named by the index does not exist.
        case missingShard
        /// The index maps a key to a shard that does not hold it.
        case shardLacksKey
        /// A component folder holds no weights file this reader can use.
        case noWeightsFound
        /// Invalid input to ``SafeTensorsWriter``.
        case invalidWriterInput
        /// A ``WeightAdjustments`` change (a LoRA delta) could not be applied to a tensor.
        case adjustment
    }

    public let kind: Kind
    /// The file concerned, as the caller named it.
    public let file: String
    /// The tensor key concerned, if any.
    public let key: String?
    /// The problem, without the file and key prefix.
    public let problem: String

    public init(_ kind: Kind, file: String, key: String? = nil, _ problem: String) {
        self.kind = kind
        self.file = file
        self.key = key
        self.problem = problem
    }

    /// `file: tensor 'key': problem`.
    public var message: String {
        if let key { return "\(file): tensor '\(key)': \(problem)" }
        return "\(file): \(problem)"
    }

    public var description: String { message }
}
