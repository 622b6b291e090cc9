import DeciWeights

/// A model failed to build: a bad config, a missing or mis-shaped tensor, or a kernel that could
/// not be set up. Messages name the file, key or parameter.
public enum ModelError: Error, CustomStringConvertible {
    case config(String)
    case weights(WeightsError)
    case kernel(String)

    public var description: String {
        switch self {
        case .config(let m): "config: \(m)"
        case .weights(let e): "\(e)"
        case .kernel(let m): "kernel setup: \(m)"
        }
    }
}
