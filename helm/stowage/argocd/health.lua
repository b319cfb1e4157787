-- Argo CD health check for stowage.io/LlmDeployment.
-- Install it in argocd-cm under resource.customizations.health.stowage.io_LlmDeployment
-- (see helm/stowage/README.md). It reads only the status the operator writes:
--   Healthy      every replica asked for is ready (or replicas is 0)
--   Progressing  no status yet, a spec change not yet observed, the model being inspected,
--                replicas being placed or loading
--   Degraded     the Degraded condition is True (a model that failed to load, a failing host, an
--                invalid spec) or replicas cannot be placed (Unplaceable)
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function message(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Stowage operator to report a status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local degraded = condition(status, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = message(degraded, "Degraded")
  return hs
end

local placed = condition(status, "Placed")
if placed ~= nil and placed.status == "False" and placed.reason == "Unplaceable" then
  hs.status = "Degraded"
  hs.message = message(placed, "Replicas cannot be placed")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message(ready, "All replicas ready")
  return hs
end
if ready ~= nil and ready.reason == "ScaledToZero" then
  hs.status = "Healthy"
  hs.message = "Scaled to zero replicas"
  return hs
end

hs.status = "Progressing"
if placed ~= nil and placed.status == "False" then
  hs.message = message(placed, "Placing replicas")
else
  hs.message = message(ready, "Waiting for replicas to become ready")
end
return hs
