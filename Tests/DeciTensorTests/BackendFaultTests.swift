import DeciTensor
import Testing

/// The sticky fault (BackendFault.swift): a kernel or allocation failure is recorded, later ops
/// skip their work without touching memory, `Backend.checkFault()` reports the first failure and
/// clears it, and ops run normally again afterwards.
@Suite("Backend fault")
struct BackendFaultTests {
    static func linear() throws -> Linear {
        try Linear(inFeatures: 2, outFeatures: 3, weight: [1, 0, 0, 1, 1, 1], bias: [0.5, 0, -1], precision: .f32)
    }

    @Test("A kernel failure is recorded, names the op, and the next op after the check runs again")
    func kernelFailure() throws {
        defer { KernelOverrides.clearFailureInjection(); _ = Backend.takeFault() }
        let layer = try Self.linear()
        let x = Tensor(shape: [1, 2], data: [2, 3])
        try Backend.checkFault()
        let y = KernelOverrides.withKernelFailure(after: 0) { layer(x) }
        #expect(y.shape == [1, 3])
        #expect(Backend.hasPendingFault)
        // Later ops skip: a fresh tensor has no memory and reads back as zeros.
        let z = Ops.add(x, x)
        #expect(!z.isAllocated && z.shape == [1, 2] && z.toArray() == [0, 0])
        #expect(throws: BackendFault(op: "linear 2->3", message: "injected kernel failure (dd_testing_fail_kernel_after)")) {
            try Backend.checkFault()
        }
        #expect(!Backend.hasPendingFault)
        try Backend.checkFault()
        #expect(layer(x).toArray() == [2.5, 3, 4])
        #expect(Ops.add(x, x).toArray() == [4, 6])
    }

    @Test("The first fault wins; the kernel failure is one-shot")
    func firstFaultWins() throws {
        defer { KernelOverrides.clearFailureInjection(); _ = Backend.takeFault() }
        let layer = try Self.linear()
        let x = Tensor(shape: [1, 2], data: [2, 3])
        KernelOverrides.withKernelFailure(after: 1) {
            _ = layer(x)  // succeeds
            _ = layer(x)  // fails
            _ = layer(x)  // skipped
        }
        let fault = Backend.takeFault()
        #expect(fault?.op == "linear 2->3")
        #expect(Backend.takeFault() == nil)
        #expect(layer(x).toArray() == [2.5, 3, 4])
    }

    @Test("An allocation failure leaves a tensor without memory that every read-out and op treats safely")
    func allocationFailure() throws {
        defer { KernelOverrides.clearFailureInjection(); _ = Backend.takeFault() }
        let small = Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        let big = KernelOverrides.withAllocationFailure(over: 1 << 20) { Tensor(shape: [1, 512, 1024, 1]) }
        #expect(!big.isAllocated && big.count == 512 * 1024)
        #expect(big.toArray().count == 512 * 1024 && big.toArray().allSatisfy { $0 == 0 })
        #expect(big.toNCHW().count == 512 * 1024)
        #expect(big[flat: 7] == 0)
        let sum = Ops.add(small, small)
        #expect(!sum.isAllocated)
        let fault = try #require(Backend.takeFault())
        #expect(fault.op == "allocate")
        #expect(fault.message == "out of memory allocating 2097152 bytes for a tensor of shape [1, 512, 1024, 1]")
        #expect(fault.description.hasPrefix("backend fault in allocate: out of memory"))
        // A tensor without memory handed to an op after the fault was taken raises a new one.
        let again = Ops.silu(big.reshaped([512, 1024]))
        #expect(again.shape == [512, 1024])
        #expect(Backend.takeFault()?.message == "an input has no storage (it came from a failed allocation)")
        #expect(Ops.add(small, small).toArray() == [2, 4, 6, 8])
    }

    @Test("An allocation under the injected limit still succeeds")
    func allocationUnderLimit() {
        defer { KernelOverrides.clearFailureInjection(); _ = Backend.takeFault() }
        let t = KernelOverrides.withAllocationFailure(over: 1 << 20) { Tensor(shape: [16, 16], data: [Float](repeating: 1, count: 256)) }
        #expect(t.isAllocated && t.toArray().allSatisfy { $0 == 1 })
        #expect(!Backend.hasPendingFault)
    }
}
