import Foundation
import Synchronization

/// Per-op time totals across everything the op layer runs (`bench --profile`). Off by default:
/// then each op pays one atomic load.
public enum OpProfile {
    private static let on = Atomic<Bool>(false)
    private static let totals = Mutex<[String: (count: Int, seconds: Double)]>([:])

    public static var enabled: Bool {
        get { on.load(ordering: .relaxed) }
        set { on.store(newValue, ordering: .relaxed) }
    }

    @inline(__always)
    static func measure<T>(_ name: @autoclosure () -> String, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let key = name()
        totals.withLock { t in
            let old = t[key] ?? (0, 0)
            t[key] = (old.count + 1, old.seconds + dt)
        }
        return r
    }

    public static func reset() { totals.withLock { $0 = [:] } }

    /// (op, calls, seconds), slowest first.
    public static var snapshot: [(op: String, calls: Int, seconds: Double)] {
        totals.withLock { t in t.map { ($0.key, $0.value.count, $0.value.seconds) } }.sorted { $0.seconds > $1.seconds }
    }

    /// A table of the totals with each op's share.
    public static func report() -> String {
        let rows = snapshot
        let total = rows.reduce(0) { $0 + $1.seconds }
        guard total > 0 else { return "(no ops recorded)" }
        var lines = [String(format: "%-34@ %7@ %9@ %6@", "op" as NSString, "calls" as NSString, "seconds" as NSString, "share" as NSString)]
        for r in rows {
            lines.append(String(format: "%-34@ %7d %9.3f %5.1f%%", r.op as NSString, r.calls, r.seconds, 100 * r.seconds / total))
        }
        lines.append(String(format: "%-34@ %7@ %9.3f", "total" as NSString, "" as NSString, total))
        return lines.joined(separator: "\n")
    }
}
