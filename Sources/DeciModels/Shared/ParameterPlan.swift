// A shape-only parameter plan: count parameters or list expected tensors without loading.
import DeciWeights

/// The tensors a model expects, by checkpoint key and PyTorch shape, computed from a config alone.
/// Counts parameters without loading anything, and lets tests check a model's naming against a
/// reference's state dict.
///
/// A plan is not written by hand: ``recording(prefix:_:)`` builds the real module against a
/// recording ``WeightStore``, whose layers are weightless placeholders, and keeps every key and
/// shape the module asked for, in the order asked. So the module code is the one place that names
/// and shapes the checkpoint.
public struct ParameterPlan: Sendable {
    public let entries: [(key: String, shape: [Int])]

    public init(entries: [(key: String, shape: [Int])] = []) { self.entries = entries }

    public var parameterCount: Int { entries.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// Keys mapped to shapes.
    public var shapes: [String: [Int]] { Dictionary(entries.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a }) }

    /// The plan of whatever `build` constructs from the scope it is handed (under `prefix`): a
    /// scope over a recording store, where every layer is a placeholder and no weight is allocated.
    public static func recording(prefix: String = "", _ build: (WeightScope) throws(ModelError) -> Void) throws(ModelError) -> ParameterPlan {
        let store = WeightStore.recording()
        try build(store.scoped(prefix))
        return ParameterPlan(entries: store.recordedShapes())
    }
}
