#include "sim/errors.hpp"

#include <new>
#include <ostream>

#include "models/cost/cost.hpp"

namespace accsim::sim {

int guarded(std::ostream& err, const std::function<int()>& body, const std::function<void()>& before_message) {
  auto report = [&](std::string_view prefix, std::string_view what, int code) {
    if (before_message) before_message();
    err << prefix << one_line(what) << '\n';
    return code;
  };
  try {
    return body();
  } catch (const InputError& e) {
    return report("accsim: error: ", e.what(), kExitUsage);
  } catch (const cost::CostError& e) {
    return report("accsim: error: ", e.what(), kExitUsage);
  } catch (const std::bad_alloc&) {
    return report("accsim: error: ", "out of memory", kExitInternal);
  } catch (const std::exception& e) {
    return report("accsim: internal error: ", e.what(), kExitInternal);
  }
}

}  // namespace accsim::sim
