// An opt-in per-module timer.
import DeciTensor
import DeciWeights
import Foundation

/// Opt-in wall-clock time per module kind, for finding the next bottleneck. Enabled by the
/// `DECI_PROFILE=1` environment variable (or ``enabled``); costs one branch per module otherwise.
/// Kernels run synchronously on the CPU backend, so wall time per call is the module's time.
public final class ModuleProfiler: @unchecked Sendable {
    public var enabled: Bool
    private let lock = NSLock()
    private var totals: [String: (seconds: Double, calls: Int)] = [:]

    public init(enabled: Bool = ProcessInfo.processInfo.environment["DECI_PROFILE"] == "1") {
        self.enabled = enabled
    }

    @inline(__always)
    func measure<T>(_ label: @autoclosure () -> String, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let key = label()
        lock.lock()
        let old = totals[key] ?? (0, 0)
        totals[key] = (old.seconds + dt, old.calls + 1)
        lock.unlock()
        return r
    }

    public func reset() {
        lock.lock()
        totals = [:]
        lock.unlock()
    }

    /// Seconds and call counts per label, largest first.
    public var entries: [(label: String, seconds: Double, calls: Int)] {
        lock.lock()
        defer { lock.unlock() }
        return totals.map { ($0.key, $0.value.seconds, $0.value.calls) }.sorted { $0.seconds > $1.seconds }
    }

    /// A table of the entries with their share of the total.
    public var report: String {
        let e = entries
        let total = e.reduce(0) { $0 + $1.seconds }
        guard total > 0 else { return "(no profile: set DECI_PROFILE=1)" }
        return e.map { String(format: "%8.3f s %5.1f%% %5d calls  ", $0.seconds, 100 * $0.seconds / total, $0.calls) + $0.label }
            .joined(separator: "\n")
    }
}

/// Profile label of an NHWC activation: `640ch 32x32`.
func site(_ t: Tensor) -> String { "\(t.shape[3])ch \(t.shape[1])x\(t.shape[2])" }
