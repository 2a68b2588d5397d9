-- Argo CD health check for publishing.dev/PublishingBuild (publishing-operator).
--
-- A PublishingBuild is a run, like a Job or a Tekton PipelineRun: it ends Succeeded, Failed or
-- Cancelled and stays there (a new release is a new resource). The Succeeded condition is the
-- source of truth, as for `kubectl wait --for=condition=Succeeded`; kstatus-compatible:
--   no condition yet, or Succeeded=Unknown (Pending, Queued, Building, Submitting) -> Progressing
--   Succeeded=True                                                               -> Healthy
--   Succeeded=False (Failed: build error, retries exhausted, timeout, invalid)    -> Degraded
--   Succeeded=False, reason Cancelled, and spec.cancel is true                    -> Healthy
--     (the state Git declares was reached: a cancel committed to Git is not an outage)
--   Succeeded=False, reason Cancelled, spec.cancel not set                        -> Degraded
--     (cancelled on Expo outside the resource: the release Git declares did not ship)
-- A run in flight whose observedGeneration is behind metadata.generation stays Progressing and
-- says so: the operator has not seen the latest spec (spec.cancel) yet, so its status is stale.
-- A finished run is final whatever its generation: spec.cancel, the only mutable field, cannot
-- change an outcome (the operator still moves observedGeneration on to acknowledge it).
-- Argo CD runs custom checks without Lua's standard libraries: only base functions are used here.

local hs = {}

local function condition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(status, succeeded)
  local text = status.phase or "Pending"
  if succeeded ~= nil and succeeded.reason ~= nil and succeeded.reason ~= "" and succeeded.reason ~= text then
    text = text .. " (" .. succeeded.reason .. ")"
  end
  local message = status.message
  if (message == nil or message == "") and succeeded ~= nil then
    message = succeeded.message
  end
  if message ~= nil and message ~= "" then
    text = text .. ": " .. message
  end
  return text
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the PublishingBuild"
  return hs
end

local succeeded = condition(status, "Succeeded")
local annotations = obj.metadata.annotations or {}
local retry = annotations["publishing.dev/retry"]

if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(status, succeeded)
  return hs
end

if succeeded ~= nil and succeeded.status == "False" then
  if retry ~= nil and retry ~= status.retryRequest then
    hs.status = "Progressing"
    hs.message = "Retry requested (publishing.dev/retry=" .. retry .. "); waiting for the operator. Was: "
      .. describe(status, succeeded)
    return hs
  end
  local cancelRequested = obj.spec ~= nil and obj.spec.cancel == true
  if succeeded.reason == "Cancelled" and cancelRequested then
    hs.status = "Healthy"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(status, succeeded)
  return hs
end

-- In flight (or not yet judged).
hs.status = "Progressing"
if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted: the operator cancels the EAS work first. " .. describe(status, succeeded)
  return hs
end
local generation = obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (status is of generation " .. tostring(observed) .. "). " .. describe(status, succeeded)
  return hs
end
if succeeded == nil then
  hs.message = "Waiting for the operator: " .. describe(status, succeeded)
  return hs
end
hs.message = describe(status, succeeded)
return hs
