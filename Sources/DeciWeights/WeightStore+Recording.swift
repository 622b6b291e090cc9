// A weight store that holds nothing and records what a model asks for: building the real module
// against it yields the model's checkpoint keys and shapes (its parameter plan) without a file and
// without weight memory, the way torch's meta device lets a module describe its state dict. The
// keys and shapes are then written once, in the module code.
import Foundation

extension WeightStore {
    /// An empty store that records every `(key, shape)` module code declares with
    /// ``WeightScope/expect(_:shape:)``, in the order declared. Its ``take(_:shape:)`` and
    /// ``tensor(_:)`` throw (it has no tensors), and ``finish(prefix:allowUnused:)`` passes.
    public static func recording(name: String = "parameter plan") -> WeightStore {
        WeightStore(name: name, files: [], locations: [:], metadata: [:], recorder: ShapeRecorder())
    }

    /// Whether this store records shapes instead of holding tensors.
    public var isRecording: Bool { recorder != nil }

    /// What a recording store has recorded, in order (empty for any other store).
    public func recordedShapes() -> [(key: String, shape: [Int])] { recorder?.entries ?? [] }
}

/// The `(key, shape)` list of a recording store; appended under a lock, as modules may load
/// concurrently.
final class ShapeRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [(key: String, shape: [Int])] = []

    func append(_ key: String, _ shape: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        recorded.append((key, shape))
    }

    var entries: [(key: String, shape: [Int])] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }
}
