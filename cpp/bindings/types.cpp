#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "sor/consolidated.hpp"
#include "sor/decision.hpp"
#include "sor/sim_types.hpp"
#include "sor/types.hpp"

namespace py = pybind11;

namespace sor::bindings {

void bind_types(py::module_& m) {
  // Registration runs once at import, before any other binding hands out these arrays.
  PYBIND11_NUMPY_DTYPE(MdEvent, ts_event, ts_recv, sequence, order_id, related_id, price_ticks,
                       quantity, instrument_id, venue_id, kind, side, flags);
  PYBIND11_NUMPY_DTYPE(LevelView, price_ticks, quantity, order_count);
  PYBIND11_NUMPY_DTYPE(Nbbo, bid_price_ticks, bid_quantity, ask_price_ticks, ask_quantity,
                       bid_venue_mask, ask_venue_mask);
  PYBIND11_NUMPY_DTYPE(ProtectedQuote, venue_id, bid_price_ticks, bid_quantity, ask_price_ticks,
                       ask_quantity);
  PYBIND11_NUMPY_DTYPE(Command, ts_ns, command_id, parent_order_id, quantity, limit_price_ticks,
                       end_time_ns, venue_mask, instrument_id, kind, side, urgency, flags,
                       client_order_hash, notional_usd, position_shares, account_id, pad,
                       reserved);
  PYBIND11_NUMPY_DTYPE(ExecReport, ts_event, ts_recv, child_order_id, parent_order_id,
                       last_price_ticks, last_quantity, leaves_quantity, instrument_id, venue_id,
                       kind, side, liquidity);
  PYBIND11_NUMPY_DTYPE(OrderIntent, ts_decision, ts_trigger, child_order_id, parent_order_id,
                       price_ticks, quantity, trigger_sequence, instrument_id, venue_id, action,
                       side, time_in_force);
  PYBIND11_NUMPY_DTYPE(AuditRecord, ts_ns, sequence, parent_order_id, child_order_id, value_a,
                       value_b, reference, instrument_id, venue_id, kind, reason, flags);
  PYBIND11_NUMPY_DTYPE(sim::AgentOrder, ts_send, client_order_id, price_ticks, quantity,
                       min_quantity, tag, reserved, instrument_id, venue_id, type, side, flags);
  PYBIND11_NUMPY_DTYPE(sim::SimReport, ts_event, ts_recv, client_order_id, tag, price_ticks,
                       quantity, leaves_quantity, fee_usd, instrument_id, venue_id, kind, side,
                       detail);
  PYBIND11_NUMPY_DTYPE(sim::SimTrade, ts_event, price_ticks, quantity, aggressor_id,
                       instrument_id, venue_id, aggressor_side, agent, informed);
  PYBIND11_NUMPY_DTYPE(DecisionContext, now_ns, start_ns, end_ns, child_price_ticks,
                       child_quantity, parent_quantity, remaining_quantity, arrival_mid_ticks,
                       instrument_id, venue_id, side, order_type, reserved);
  PYBIND11_NUMPY_DTYPE(DecisionRecord, ts_ns, sequence, parent_order_id, child_order_id,
                       md_events, inference_ns, context, model_output, model_mask,
                       model_generation, risk_reason, row_status, flags, reserved, features);
  m.attr("decision_record_dtype") = py::dtype::of<DecisionRecord>();
  m.attr("agent_order_dtype") = py::dtype::of<sim::AgentOrder>();
  m.attr("sim_report_dtype") = py::dtype::of<sim::SimReport>();
  m.attr("sim_trade_dtype") = py::dtype::of<sim::SimTrade>();
  py::enum_<sim::SimOrderType>(m, "SimOrderType")
      .value("LIMIT", sim::SimOrderType::kLimit)
      .value("MARKET", sim::SimOrderType::kMarket)
      .value("IOC", sim::SimOrderType::kIoc)
      .value("POST_ONLY", sim::SimOrderType::kPostOnly)
      .value("MIDPOINT_PEG", sim::SimOrderType::kMidpointPeg);
  py::enum_<sim::SimReportKind>(m, "SimReportKind")
      .value("NONE", sim::SimReportKind::kNone)
      .value("ACK", sim::SimReportKind::kAck)
      .value("FILL", sim::SimReportKind::kFill)
      .value("CANCELLED", sim::SimReportKind::kCancelled)
      .value("REJECTED", sim::SimReportKind::kRejected)
      .value("REPLACED", sim::SimReportKind::kReplaced);
  py::enum_<sim::SimRejectReason>(m, "SimRejectReason")
      .value("NONE", sim::SimRejectReason::kNone)
      .value("UNKNOWN_VENUE", sim::SimRejectReason::kUnknownVenue)
      .value("UNKNOWN_INSTRUMENT", sim::SimRejectReason::kUnknownInstrument)
      .value("BAD_QUANTITY", sim::SimRejectReason::kBadQuantity)
      .value("BAD_PRICE", sim::SimRejectReason::kBadPrice)
      .value("BAD_SIDE", sim::SimRejectReason::kBadSide)
      .value("UNSUPPORTED_TYPE", sim::SimRejectReason::kUnsupportedType)
      .value("WOULD_TAKE", sim::SimRejectReason::kWouldTake)
      .value("UNKNOWN_ORDER", sim::SimRejectReason::kUnknownOrder)
      .value("DUPLICATE_ORDER", sim::SimRejectReason::kDuplicateOrder)
      .value("NO_REFERENCE", sim::SimRejectReason::kNoReference)
      .value("SESSION_CLOSED", sim::SimRejectReason::kSessionClosed);
  py::enum_<sim::SimLiquidity>(m, "SimLiquidity")
      .value("NONE", sim::SimLiquidity::kNone)
      .value("ADDED", sim::SimLiquidity::kAdded)
      .value("REMOVED", sim::SimLiquidity::kRemoved)
      .value("MIDPOINT", sim::SimLiquidity::kMidpoint);
  m.attr("command_dtype") = py::dtype::of<Command>();
  m.attr("exec_report_dtype") = py::dtype::of<ExecReport>();
  m.attr("order_intent_dtype") = py::dtype::of<OrderIntent>();
  m.attr("audit_record_dtype") = py::dtype::of<AuditRecord>();
  m.attr("md_event_dtype") = py::dtype::of<MdEvent>();
  m.attr("level_dtype") = py::dtype::of<LevelView>();
  m.attr("nbbo_dtype") = py::dtype::of<Nbbo>();
  m.attr("protected_quote_dtype") = py::dtype::of<ProtectedQuote>();
  py::enum_<EventKind>(m, "EventKind")
      .value("NONE", EventKind::kNone)
      .value("ADD", EventKind::kAdd)
      .value("MODIFY", EventKind::kModify)
      .value("REPLACE", EventKind::kReplace)
      .value("CANCEL", EventKind::kCancel)
      .value("DELETE", EventKind::kDelete)
      .value("EXECUTE", EventKind::kExecute)
      .value("TRADE", EventKind::kTrade)
      .value("CLEAR", EventKind::kClear)
      .value("LEVEL", EventKind::kLevel)
      .value("BROKEN_TRADE", EventKind::kBrokenTrade)
      .value("STATUS", EventKind::kStatus);
  py::enum_<Side>(m, "Side")
      .value("NONE", Side::kNone)
      .value("BUY", Side::kBuy)
      .value("SELL", Side::kSell);
  py::enum_<CommandKind>(m, "CommandKind")
      .value("NONE", CommandKind::kNone)
      .value("NEW_PARENT", CommandKind::kNewParent)
      .value("CANCEL_PARENT", CommandKind::kCancelParent)
      .value("AMEND_PARENT", CommandKind::kAmendParent)
      .value("ACCOUNT_STATE", CommandKind::kAccountState);
  py::enum_<ExecKind>(m, "ExecKind")
      .value("NONE", ExecKind::kNone)
      .value("ACK", ExecKind::kAck)
      .value("FILL", ExecKind::kFill)
      .value("CANCELLED", ExecKind::kCancelled)
      .value("REJECTED", ExecKind::kRejected);
  py::enum_<OrderAction>(m, "OrderAction")
      .value("NONE", OrderAction::kNone)
      .value("NEW", OrderAction::kNew)
      .value("CANCEL", OrderAction::kCancel);
  py::enum_<TimeInForce>(m, "TimeInForce")
      .value("DAY", TimeInForce::kDay)
      .value("IOC", TimeInForce::kIoc)
      .value("POST_ONLY", TimeInForce::kPostOnly)
      .value("MIDPOINT_PEG", TimeInForce::kMidpointPeg);
  py::enum_<AuditKind>(m, "AuditKind")
      .value("NONE", AuditKind::kNone)
      .value("COMMAND_ACCEPTED", AuditKind::kCommandAccepted)
      .value("COMMAND_REJECTED", AuditKind::kCommandRejected)
      .value("CHILD_ORDER", AuditKind::kChildOrder)
      .value("RISK_REJECT", AuditKind::kRiskReject)
      .value("EXECUTION", AuditKind::kExecution)
      .value("PARENT_DONE", AuditKind::kParentDone)
      .value("PARAMS_APPLIED", AuditKind::kParamsApplied)
      .value("BOOK_ERROR", AuditKind::kBookError)
      .value("RISK_STATE", AuditKind::kRiskState)
      .value("RING_OVERFLOW", AuditKind::kRingOverflow)
      .value("MODEL_GUARD", AuditKind::kModelGuard)
      .value("ACCOUNT_STATE", AuditKind::kAccountState);
  py::enum_<RejectReason>(m, "RejectReason")
      .value("NONE", RejectReason::kNone)
      .value("HALTED", RejectReason::kHalted)
      .value("MAX_ORDER_QUANTITY", RejectReason::kMaxOrderQuantity)
      .value("MAX_ORDER_NOTIONAL", RejectReason::kMaxOrderNotional)
      .value("PRICE_BAND", RejectReason::kPriceBand)
      .value("MAX_OPEN_ORDERS", RejectReason::kMaxOpenOrders)
      .value("ORDER_RATE", RejectReason::kOrderRate)
      .value("UNKNOWN_PARENT", RejectReason::kUnknownParent)
      .value("DUPLICATE_PARENT", RejectReason::kDuplicateParent)
      .value("INVALID_COMMAND", RejectReason::kInvalidCommand)
      .value("CAPACITY", RejectReason::kCapacity)
      .value("MAX_PARENT_QUANTITY", RejectReason::kMaxParentQuantity)
      .value("VENUE_DISABLED", RejectReason::kVenueDisabled)
      .value("GROSS_NOTIONAL", RejectReason::kGrossNotional)
      .value("RESTRICTED", RejectReason::kRestricted)
      .value("CREDIT_LIMIT", RejectReason::kCreditLimit)
      .value("POSITION_LIMIT", RejectReason::kPositionLimit)
      .value("PARTICIPATION", RejectReason::kParticipation)
      .value("MESSAGE_RATE", RejectReason::kMessageRate)
      .value("REFERENCE_COLLAR", RejectReason::kReferenceCollar)
      .value("MAX_PARENT_NOTIONAL", RejectReason::kMaxParentNotional)
      .value("DUPLICATE_CLIENT_ORDER_ID", RejectReason::kDuplicateClientOrderId)
      .value("REDUCING", RejectReason::kReducing)
      .value("MODEL_GUARD", RejectReason::kModelGuard)
      .value("UNKNOWN_ACCOUNT", RejectReason::kUnknownAccount)
      .value("INVALID_INSTRUMENT", RejectReason::kInvalidInstrument);
  py::enum_<ModelGuardReason>(m, "ModelGuardReason")
      .value("NONE", ModelGuardReason::kNone)
      .value("NON_FINITE_OUTPUT", ModelGuardReason::kNonFiniteOutput)
      .value("OUTPUT_OUT_OF_RANGE", ModelGuardReason::kOutputOutOfRange)
      .value("NON_FINITE_INPUT", ModelGuardReason::kNonFiniteInput)
      .value("LATENCY_BUDGET", ModelGuardReason::kLatencyBudget)
      .value("FILL_RATE_COLLAPSE", ModelGuardReason::kFillRateCollapse)
      .value("VENUE_CONCENTRATION", ModelGuardReason::kVenueConcentration)
      .value("FEATURE_DRIFT", ModelGuardReason::kFeatureDrift)
      .value("OPERATOR", ModelGuardReason::kOperator);
  m.attr("FLAG_PRINTABLE") = static_cast<int>(kFlagPrintable);
  m.attr("FLAG_CROSS") = static_cast<int>(kFlagCross);
  m.attr("FLAG_SNAPSHOT") = static_cast<int>(kFlagSnapshot);
}

}  // namespace sor::bindings
