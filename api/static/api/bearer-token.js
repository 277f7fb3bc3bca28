// The browsable API's token box (rest_framework/api.html). The token is kept in this tab's
// sessionStorage, so it outlives the page (DRF's forms replace the document with the answer)
// but not the tab, and is sent as `Authorization: Bearer <token>` with the requests the page's
// forms make through jQuery (DRF's ajax-form.js), to this server only.
(function () {
  "use strict";
  var KEY = "sumservice.bearerToken";

  function token() {
    return window.sessionStorage.getItem(KEY) || "";
  }

  function keep(value) {
    // A pasted "Bearer <token>" is taken as the token.
    value = $.trim(value).replace(/^bearer\s+/i, "");
    if (value) {
      window.sessionStorage.setItem(KEY, value);
    } else {
      window.sessionStorage.removeItem(KEY);
    }
  }

  function sameOrigin(url) {
    return new URL(url, document.baseURI).origin === window.location.origin;
  }

  $(document).ajaxSend(function (event, xhr, settings) {
    if (token() && sameOrigin(settings.url)) {
      xhr.setRequestHeader("Authorization", "Bearer " + token());
    }
  });

  $(function () {
    var input = $("#bearer-token");
    var status = $("#bearer-token-status");

    function show() {
      input.val(token());
      status.text(
        token()
          ? "The forms below send this token as Authorization: Bearer."
          : "No token: POST /auth for one, then paste its access_token here."
      );
    }

    $("#bearer-token-form").on("submit", function (event) {
      event.preventDefault();
      keep(input.val());
      show();
    });
    // A token pasted in and left there is meant to be used: taken when the box loses focus,
    // as it does when a form's button below is pressed.
    input.on("change", function () {
      keep(input.val());
      show();
    });
    $("#bearer-token-forget").on("click", function () {
      keep("");
      show();
    });
    $("#keep-token").on("click", function () {
      keep($(this).attr("data-bearer-token"));
      $(this).text("Kept: /sum's page sends it").prop("disabled", true);
    });
    show();
  });
})();
