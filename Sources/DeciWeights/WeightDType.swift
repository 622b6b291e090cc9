/// Element types a safetensors header may name.
///
/// All dtypes of the safetensors format are recognised so a checkpoint that carries, say, a `U8`
/// mask or an `F64` buffer still opens; conversion to `Float` / bf16 is offered for the floating
/// types (``isConvertibleToFloat``) and to `Int64` for the integer types.
public enum WeightDType: String, Sendable, CaseIterable, CustomStringConvertible {
    // Declared in the order of the reference implementation's enum (increasing alignment), which
    // ``alignmentRank`` exposes: its writer sorts tensors by that order.
    case BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ
    case I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64

    public var description: String { rawValue }

    /// Bits per element (4 and 6 for the packed micro-scaling formats).
    public var bitSize: Int {
        switch self {
        case .F4: 4
        case .F6_E2M3, .F6_E3M2: 6
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: 8
        case .I16, .U16, .F16, .BF16: 16
        case .I32, .U32, .F32: 32
        case .C64, .F64, .I64, .U64: 64
        }
    }

    /// Bytes per element, or nil for the sub-byte packed formats.
    public var byteSize: Int? { bitSize % 8 == 0 ? bitSize / 8 : nil }

    /// Position in the reference writer's ordering (larger = written first).
    public var alignmentRank: Int { Self.allCases.firstIndex(of: self) ?? 0 }

    /// Whether ``WeightTensor/floats()`` and the bf16 conversions accept this dtype.
    public var isConvertibleToFloat: Bool {
        switch self {
        case .F32, .F16, .BF16, .F64: true
        default: false
        }
    }

    /// Whether ``WeightTensor/int64s()`` accepts this dtype.
    public var isInteger: Bool {
        switch self {
        case .BOOL, .U8, .I8, .I16, .U16, .I32, .U32, .I64, .U64: true
        default: false
        }
    }
}
