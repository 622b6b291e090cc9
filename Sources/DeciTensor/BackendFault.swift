// The sticky fault: a kernel or allocation failure inside a forward pass, recorded on the calling
// thread instead of stopping the process. Forward passes do not throw (every layer would have to),
// so the first failure is recorded and every later op on the thread returns a correctly shaped
// result without running a kernel or touching memory, until a caller takes the fault with
// `Backend.checkFault()` at a stage boundary. A long-running server then fails one job, not the
// process.
import CDeciKernels

/// A kernel or allocation failure, naming the op it happened in.
public struct BackendFault: Error, CustomStringConvertible, Equatable, Sendable {
    /// The op that failed, as the op profiler labels it (e.g. `conv3x3 64->64@32`, `allocate`).
    public let op: String
    /// What the kernel or allocator reported.
    public let message: String

    public init(op: String, message: String) {
        self.op = op
        self.message = message
    }

    public var description: String { "backend fault in \(op): \(message)" }
}

extension Backend {
    /// Throws (and clears) the calling thread's fault, if an op recorded one since the last check:
    /// everything computed since is meaningless and must be dropped, and the next op runs normally.
    public static func checkFault() throws(BackendFault) {
        guard let fault = takeFault() else { return }
        throw fault
    }

    /// Whether the calling thread has a fault not yet taken (its ops are skipping their work).
    public static var hasPendingFault: Bool { dd_fault_active() != 0 }

    /// The calling thread's fault, cleared; nil when there is none.
    public static func takeFault() -> BackendFault? {
        let opCapacity = 256, messageCapacity = 768
        var op = [CChar](repeating: 0, count: opCapacity), message = [CChar](repeating: 0, count: messageCapacity)
        let taken = op.withUnsafeMutableBufferPointer { o in
            message.withUnsafeMutableBufferPointer { m in
                dd_fault_take(o.baseAddress, Int32(opCapacity), m.baseAddress, Int32(messageCapacity))
            }
        }
        guard taken != 0 else { return nil }
        return BackendFault(op: cString(op), message: cString(message))
    }
}

/// The op layer's side of the sticky fault.
enum Fault {
    /// Records a fault unless one is already recorded (the first is the cause, the rest follow).
    static func raise(op: String, _ message: String) {
        _ = op.withCString { o in message.withCString { m in dd_fault_raise(o, m) } }
    }

    /// Whether an op must skip its work: a fault is pending, or one of `tensors` has no storage (a
    /// tensor from a failed allocation outliving the fault it caused), which raises one. Ops call
    /// it after allocating their output, so a failed output allocation is caught too.
    @inline(__always)
    static func skips(_ op: @autoclosure () -> String, _ tensors: Tensor?...) -> Bool {
        if dd_fault_active() != 0 { return true }
        for t in tensors where t?.isAllocated == false {
            raise(op: op(), "an input has no storage (it came from a failed allocation)")
            return true
        }
        return false
    }

    /// Records a kernel's failure status as a fault (0 is success).
    @inline(__always)
    static func check(_ status: Int32, op: @autoclosure () -> String, _ message: String) {
        if status != 0 { raise(op: op(), message.isEmpty ? "kernel failed with status \(status)" : message) }
    }
}

private func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
