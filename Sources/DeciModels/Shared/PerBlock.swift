
/// A config value given either as one value for every block or as one per block (diffusers'
/// `int | tuple[int]` fields such as `attention_head_dim` and `layers_per_block`).
public enum PerBlock<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case all(Value)
    case each([Value])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Value.self) { self = .all(v) } else { self = .each(try c.decode([Value].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .all(let v): try c.encode(v)
        case .each(let vs): try c.encode(vs)
        }
    }

    /// One value per block; a list of the wrong length is a config error naming `key`.
    public func values(count: Int, key: String) throws(ModelError) -> [Value] {
        switch self {
        case .all(let v): return [Value](repeating: v, count: count)
        case .each(let vs):
            guard vs.count == count else { throw .config("'\(key)' has \(vs.count) entries for \(count) blocks") }
            return vs
        }
    }
}
